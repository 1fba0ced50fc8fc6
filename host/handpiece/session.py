"""The main job: run a treatment program on a device, phase by phase.

On the simulated board the rig plays the operator: sweeps at about the
phase's speed with some strokes too fast, pauses, a footswitch lifted now and
then, still hands on trigger points. On a real board a person does that and
this only guides and watches. Either way every line the device sends goes to
the session record (JSON lines) and the screen (`screen.py`).
"""
from __future__ import annotations

import json
import random
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from . import __version__
from .device import Device, DeviceError, ProtocolError
from .escape import shown
from .frames import STATUS, Line
from .motion import Motion
from .program import Program, ProgramError, device_limits, upload
from .rig import UnixRig
from .screen import Screen

CHUNK_MS = 200  # device time between looks at the progress, on the simulated board
STATUS_MS = 100
SUP_MS = 300  # host supervision (SR-13): the device stops if the host falls silent
HEARTBEAT_MS = 100  # a frame at least this often, well inside SUP_MS
SILENT_S = 3.0  # a real device with no status line for this long is lost
LAST_STATUS_S = 1.0  # how long the end of a run waits for the device's last status line
RECORD_FORMAT = 2  # 2: header and closing lines


class SessionError(RuntimeError):
    pass


class Record:
    """Session record: one JSON object per line. A header line (when, what
    program, which device, which options) comes first, then every device line
    in order, and a closing line says how the run ended. Each line goes to the
    file as it comes, so a crash of the tool loses at most the line being
    written."""

    def __init__(self, path: Path, header: dict | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = path.open("w", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()  # lines come from the device's thread
        self._header = dict(header or {})
        self._pending: list[str] | None = []  # device lines that came before the header
        self.ended: dict | None = None

    def _write(self, obj: dict) -> None:
        text = json.dumps(obj) + "\n"
        with self._lock:
            if self._f.closed:  # lines after the end of the session are not part of it
                return
            if self._pending is not None:
                self._pending.append(text)
            else:
                self._f.write(text)

    def header(self, **more) -> None:
        """Write the header (what is known by now, plus `more`) and the lines
        held back until it."""
        with self._lock:
            if self._pending is None or self._f.closed:
                return
            self._header.update(more)
            self._f.write(json.dumps({"kind": "header", **self._header}) + "\n")
            self._f.writelines(self._pending)
            self._pending = None

    def line(self, ln: Line) -> None:
        obj = {"kind": {"ok": "reply", "er": "error", "st": "status", "ev": "event"}[ln.kind]}
        if ln.kind == "ev":
            obj.update(t_ms=ln.t_ms, name=ln.name)
        obj.update(ln.fields)
        if ln.kind in ("ok", "er") or (ln.kind == "ev" and not ln.fields):
            obj["text"] = ln.text
        self._write(obj)

    def note(self, **obj) -> None:
        self._write({"kind": "note", **obj})

    def close(self, how: str = "done", **detail) -> None:
        """The closing line (how the run ended), then close. Only the first
        call counts."""
        self.header()  # a run that never reached the device still has one
        with self._lock:
            if self._f.closed:
                return
            self.ended = {"kind": "end", "how": how, "utc": utc_now(), **detail}
            self._f.write(json.dumps(self.ended) + "\n")
            self._f.close()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_header(program: Program, target: str, options: dict) -> dict:
    """The host's part of the record header; the device's part comes after HELLO."""
    now = datetime.now().astimezone()
    return {
        "record": RECORD_FORMAT,
        "utc": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "local": now.isoformat(timespec="seconds"),
        "program_file": program.path.name if program.path else None,
        "program_sha256": program.sha256,
        "program": program.name,
        "phases": [ph.describe() for ph in program.phases],
        "host": f"handpiece {__version__}",
        "target": target,
        "options": options,
    }


def ended_how(exc: BaseException | None, device: Device | None) -> tuple[str, dict]:
    """How a run ended, for the closing line: done, refused, fault, interrupted
    or device lost, with what is known of why."""
    faults = device.events_named("fault") if device is not None else []
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", {}
    if faults:
        text = faults[-1].text
        return "fault", {"code": text.split(" ", 1)[0], "detail": text}
    if exc is None:
        return "done", {}
    if isinstance(exc, (ProgramError, DeviceError)):
        return "refused", {"detail": str(exc)}
    return "device lost", {"detail": str(exc)}


class SimulatedOperator:
    """A therapist's hand and foot, played through the rig."""

    def __init__(self, rig: UnixRig, seed: int):
        self.rig = rig
        self.rng = random.Random(seed)
        self.x_mm = 0.0

    def scan_motion(self, v_min: float, v_max: float, seconds: float) -> Motion:
        v_nom = (v_min + v_max) / 2
        m = Motion(self.x_mm)
        sign = 1
        while m.end_s < seconds:
            v = v_nom * self.rng.uniform(0.85, 1.15)
            if self.rng.random() < 0.08:
                v = v_max * 1.4  # a hand that is sometimes too fast
            m.move(sign * self.rng.uniform(80, 120), v)
            sign = -sign
            if self.rng.random() < 0.05:
                m.hold(self.rng.uniform(0.3, 1.0))
        self.x_mm = m.x_mm
        return m

    def move_to_next_point(self) -> Motion:
        m = Motion(self.x_mm).move(self.rng.choice((-1, 1)) * self.rng.uniform(20, 40), 50).hold(600)
        self.x_mm = m.x_mm
        return m


class SessionRunner:
    def __init__(self, device: Device, rig: UnixRig | None, program: Program, out_dir: Path,
                 seed: int = 1, out: TextIO = sys.stdout, record: Record | None = None,
                 screen: Screen | None = None):
        self.device = device
        self.rig = rig
        self.program = program
        self.out_dir = out_dir
        self.record = record or Record(out_dir / "session.jsonl", run_header(program, "", {}))
        self.screen = screen or Screen(program, out)
        self.operator = SimulatedOperator(rig, seed) if rig is not None else None
        self._heartbeat_stop = threading.Event()
        device.listen(self._on_line)

    def _on_line(self, ln: Line) -> None:
        self.record.line(ln)
        if ln.kind == "st":
            self.screen.status(ln.fields)
        elif ln.kind == "ev":
            self.screen.event(ln)

    def say(self, text: str) -> None:
        self.screen.say(text)

    def _count(self, name: str) -> int:
        return len(self.device.events_named(name))

    def _check_fault(self) -> None:
        faults = self.device.events_named("fault")
        if faults:
            raise SessionError(f"device fault: {faults[-1].text}")

    def run(self) -> None:
        """The whole session. Whatever ends it (done, fault, Ctrl-C, a lost
        link, a refusal), emission is stopped, the device's last status is
        recorded and the device left in STANDBY if it can still be reached,
        and the record gets its closing line."""
        exc: BaseException | None = None
        try:
            self._run()
        except BaseException as e:
            exc = e
            raise
        finally:
            self._heartbeat_stop.set()
            self.screen.close()
            try:
                self.device.stop()
                self._last_status()
                self.device.request("STANDBY")
            except Exception:  # noqa: BLE001 - best effort: the device may be gone or faulted
                pass
            how, detail = ended_how(exc, self.device)
            self.record.close(how, **detail)

    def _last_status(self) -> None:
        """Ask for a status line after the stop: the device's own word on what
        was delivered, for the summary of a run that ended early."""
        dev = self.device
        n = len(dev.status)
        dev.t.write(STATUS)
        dev.wait(lambda: len(dev.status) > n, timeout=LAST_STATUS_S, what="the last status line")

    def _run(self) -> None:
        dev = self.device
        info = dev.hello()
        limits = device_limits(dev)
        settings = dev.request("GET").fields
        self.record.header(firmware=info.get("fw"), board=info.get("board"), device=info, limits=limits,
                           settings=settings)
        self.say(f"connected: {shown(info.get('board'))} firmware {shown(info.get('fw'))} "
                 f"protocol {shown(info.get('proto'))}")
        pend = upload(dev, self.program)
        self.record.note(event="program", name=self.program.name, crc=pend["crc"], resumed=pend["resumed"])
        self.say(f"program '{shown(self.program.name)}': {len(self.program.phases)} phases, "
                 f"{self.program.delivered_j:.2f} J in whole pulses (target {self.program.energy_j} J)"
                 + (f"; resuming phase {int(pend['phase']) + 1}" if pend["resumed"] == "1" else ""))
        dev.request(f"SET status_ms={STATUS_MS}")
        dev.request(f"SET sup_ms={SUP_MS}")
        ready = dev.request("READY").fields
        self.screen.start()
        if self.rig is None:
            self._guide_person()
        else:
            self._advance(int(ready["delay_ms"]) + 20)
            first = int(pend["phase"])
            for i, ph in enumerate(self.program.phases[first:], start=first):
                self.say(f"phase {i + 1}/{len(self.program.phases)}: {shown(ph.name)} ({ph.mode}, "
                         f"{ph['energy_j']} J)")
                if ph.mode == "scan":
                    self._scan(i, ph)
                else:
                    self._points(i, ph)
        dev.request("SET status_ms=0")

    def _advance(self, ms: float) -> None:
        """Let simulated time pass with a heartbeat before every chunk, as a
        live host would send them (the device is supervised)."""
        while ms > 0:
            step = min(ms, SUP_MS // 2)
            self.device.request("HB")
            self.rig.advance(step)
            ms -= step

    def _wait_until(self, done, max_s: float) -> None:
        """Advance device time in chunks until done() (or fail after max_s)."""
        waited = 0.0
        while not done():
            self._check_fault()
            if waited > max_s:
                raise SessionError(f"no progress after {max_s:.0f} s of device time")
            self._advance(CHUNK_MS)
            self.device.sync()
            waited += CHUNK_MS / 1000

    def _scan(self, i: int, ph) -> None:
        rig, op = self.rig, self.operator
        n_done = self._count("phase-done")
        seconds = float(ph["energy_j"] / ph.pulse_j / 10) + 60  # generous: >= 10 Hz
        rig.hand(op.scan_motion(float(ph["speed_min_mm_s"]), float(ph["speed_max_mm_s"]), seconds))
        rig.press()

        def finished():
            if self._count("phase-done") > n_done:
                return True
            if op.rng.random() < 0.01:  # the operator lifts the foot for a moment
                rig.release()
                self._advance(400)
                rig.press()
            return False

        self._wait_until(finished, seconds * 3)
        rig.release()
        self._advance(300)
        op.x_mm = rig.position() / rig.counts_per_mm  # where the hand really stopped

    def _points(self, i: int, ph) -> None:
        rig, op = self.rig, self.operator
        points = int(ph["points"])
        per_point_s = ph.pulses / points / float(ph["rate_hz"])
        n_phase_done = self._count("phase-done")  # a resumed session started past some
        while self._count("phase-done") == n_phase_done:
            rig.hand(op.move_to_next_point())
            self._advance(1000)  # moved there, hand now still
            n = self._count("point-done")
            rig.press()
            self._wait_until(lambda: self._count("point-done") > n, per_point_s * 3 + 5)  # noqa: B023 - waited on here
            rig.release()
            self._advance(200)
            op.x_mm = rig.position() / rig.counts_per_mm

    def _guide_person(self) -> None:
        """A real board: say what to do, watch until the session is done."""
        for i, ph in enumerate(self.program.phases):
            what = ("sweep the handpiece at %s..%s mm/s" % (ph["speed_min_mm_s"], ph["speed_max_mm_s"])
                    if ph.mode == "scan" else f"hold still on each of {ph['points']} points")
            self.say(f"phase {i + 1}: {shown(ph.name)}: {what}; press the footswitch")
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        dev = self.device
        while not (dev.events_named("session-done") or dev.events_named("fault")):
            n = len(dev.status)
            try:
                dev.wait(lambda: len(dev.status) > n or dev.events_named("fault"), timeout=SILENT_S,  # noqa: B023
                         what="a status line")
            except ProtocolError as e:
                raise SessionError(f"the device went silent: {e}") from e
        self._check_fault()

    def _heartbeat(self) -> None:
        """Real time: a heartbeat frame every HEARTBEAT_MS until the session ends."""
        while not self._heartbeat_stop.wait(HEARTBEAT_MS / 1000):
            try:
                self.device.request("HB")
            except (DeviceError, ProtocolError):
                return  # the main loop reports what went wrong
