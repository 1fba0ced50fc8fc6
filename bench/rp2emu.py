"""`make bench` section rp2emu: the flashable rp2 image on the emulated RP2040,
every figure in emulated time (the emulator's measurement stamps,
boards/rp2/emu/measure.mjs), never wall time.

One emulator run boots the image normally and goes through: interlock trips
in STANDBY, a program of trigger-point phases (pulse width and period per
width and rate), stop bytes while emitting, a scan (pacing), and a trip while
emitting; the watchdog feeds over the whole run give the control-loop period;
a heap census after boot and after the session. A second run boots with the
SAFE_MODE jumper (the REPL free, docs/boards.md) to check the census against
gc.mem_alloc() after gc.collect(), to measure the port's own heap, and to show
where the firmware's goes: gc.mem_alloc() after each module's import, in the
order main.py imports them, and the objects the Controller and the board build.
"""
from __future__ import annotations

import os
import random
import socket
import tempfile
import time
from pathlib import Path

import serial

from handpiece.motion import Motion
from handpiece.rig import RigError, UnixRig
from handpiece.rp2emu import Rp2Emulator, carrier_inputs, rp2_pins
from handpiece.strategy import Station
from handpiece.targets import Rp2EmuTarget, rp2_image

ROOT = Path(__file__).resolve().parents[1]
WIDTHS_US = (100, 120, 150)
RATES_HZ = (10, 30, 40)
POWER_W = 1000  # 0.15 J at 150 us: 6 W at 40 Hz, under the 10.5 W average-power limit
SPACING_MM = 3.3
COUNTS_PER_MM = 20
HEAP_BUDGET_B = 65536


def verdict(ok: bool) -> str:
    return "PASS" if ok else "OVER"


def pct(v: list[float], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))]


def dist(name: str, v: list[float], budget: str, ok: bool | None, unit: str = "us") -> None:
    tail = f"budget {budget}: {verdict(ok)}" if ok is not None else budget
    if not v:
        print(f"  {name:<40} n=    0  (no samples)  {tail}")
        return
    print(f"  {name:<40} n={len(v):5d}  p50={pct(v, 0.5):9.2f}  p99={pct(v, 0.99):9.2f}  max={max(v):9.2f} {unit}"
          f"  {tail}")


class Stamps:
    """The `m` lines of the rig log: (kind, fields..., t_ns)."""

    def __init__(self, rig: UnixRig):
        self.rig = rig

    def mark(self) -> int:
        return len(self.rig.log)

    def lines(self, since: int = 0) -> list[list[str]]:
        return [ln.split()[1:] for ln in self.rig.log[since:] if ln.startswith("m ")]

    def times(self, kind: str, since: int = 0, *match: str) -> list[int]:
        return [int(w[-1]) for w in self.lines(since) if w[0] == kind and list(w[1:1 + len(match)]) == list(match)]

    def wait(self, kind: str, since: int, *match: str, timeout_s: float) -> int:
        return self.rig.wait_notification(lambda: next(iter(self.times(kind, since, *match)), None),
                                          timeout=timeout_s)


def point_phase(width_us: int, rate_hz: int, pulses: int) -> dict:
    """A trigger point of exactly `pulses` pulses (the phase ends on the last whole pulse)."""
    e_j = POWER_W * width_us / 1e6
    return {"name": f"{width_us} us {rate_hz} Hz", "mode": "point", "width_us": width_us, "power_w": POWER_W,
            "rate_hz": rate_hz, "points": 1, "tol_mm": 0.5, "energy_j": round(e_j * (pulses + 0.5), 4)}


def run_rp2emu(quick: bool, image: str | None) -> None:
    n_trip = 10 if quick else 30
    n_pulses = 6 if quick else 12
    n_stop = 5 if quick else 15
    n_edge = 1 if quick else 2
    # a program holds at most 8 phases: 7 trigger points and the scan (quick: 5 and the scan)
    combos = [(w, 40) for w in WIDTHS_US] + [(120, r) for r in RATES_HZ if r != 40]
    if not quick:
        combos += [(100, 10), (150, 10)]
    uf2 = Path(image) if image else rp2_image()
    print(f"emulated RP2040 running the flashable image {uf2.name}; all times on the emulated clock")
    t_wall = time.perf_counter()
    with Rp2EmuTarget(str(uf2), measure=True) as (device, rig):
        stamps = Stamps(rig)
        st = Station(device, rig)
        st.standby()
        rig.advance(50)
        heap_boot = census(rig)
        slow = rig.slowdown()
        wait_s = lambda emu_s: 60 + 4 * slow * emu_s  # noqa: E731 - hang protection only, never a measurement

        # interlock pin -> the core's write of LASER_EN low (the hard IRQ), in STANDBY:
        # an open door there only refuses READY, so each trip needs no reset
        trips = []
        rng = random.Random(1)
        for _ in range(n_trip):
            m = stamps.mark()
            rig.open("door")
            t_in = stamps.wait("in", m, "door", "0", timeout_s=wait_s(1))
            t_low = stamps.wait("low", m, timeout_s=wait_s(1))
            trips.append((t_low - t_in) / 1000)
            rig.advance(rng.uniform(1, 5))
            rig.close("door")
            rig.advance(30)  # the closing contact is debounced (20 ms)
        if device.events_named("fault"):
            raise RigError(f"a door opening in STANDBY latched a fault: {device.events_named('fault')[0].raw}")

        # one program: a trigger point per width and rate, then a scan that is never finished
        scan_s = 2.0 if quick else 4.0
        phases = [point_phase(w, r, n_pulses) for w, r in combos]
        phases.append({"name": "scan", "mode": "scan", "width_us": 120, "power_w": POWER_W, "rate_hz": 40,
                       "spacing_mm": SPACING_MM, "speed_min_mm_s": 20, "speed_max_mm_s": 150,
                       "energy_j": round(POWER_W * 120e-6 * 1000.5, 4)})  # stops and trips end it
        st.load({"program": {"name": "bench"}, "phase": phases})
        device.request("READY")
        rig.advance(st.ready_delay_ms + 1)
        m_session = stamps.mark()

        def press() -> int:
            """Lift and press the footswitch; the emulated ns the enable went high."""
            m = stamps.mark()
            rig.release()
            rig.advance(40)
            rig.press()
            return stamps.wait("en", m, "1", timeout_s=wait_s(1))

        def paused(since_events: int, emu_s: float) -> None:
            device.wait(lambda: any(e.name == "state" and e.text.endswith(">PAUSED")
                                    for e in device.events[since_events:]), timeout=wait_s(emu_s),
                        what="the phase's end (PAUSED)")

        pulse_rows = []
        for w, r in combos:
            m = stamps.mark()
            n_ev = len(device.events)
            press()
            paused(n_ev, n_pulses / r + 1)
            edges = [(int(w_[1]), int(w_[2])) for w_ in stamps.lines(m) if w_[0] == "fire"]
            rises = [t for lv, t in edges if lv == 1]
            falls = [t for lv, t in edges if lv == 0]
            widths = [(b - a) / 1000 for a, b in zip(rises, falls)]
            periods = [(b - a) / 1000 for a, b in zip(rises, rises[1:])]
            pulse_rows.append((w, r, widths, periods))
        m_points_end = stamps.mark()

        # pacing: the hand at 30 then 90 mm/s, pulse encoder counts against the spacing;
        # then it sweeps on while stop bytes pause the scan, and holds still for the trips
        stop_s = 0.15 * n_stop
        speeds = ((30, scan_s / 2), (90, scan_s))
        motion = Motion(0).hold(0.2)
        for v, secs in speeds:
            motion.move(v * secs, v)
        motion.sweeps(60, 60, int(stop_s + 1)).hold(1)
        n_pulses_before = len(rig.pulses)
        t0 = rig.hand(motion)
        m_scan = stamps.mark()
        press()
        rig.advance((0.2 + sum(secs for _, secs in speeds)) * 1000)
        m_scan_end = stamps.mark()
        kfs = motion.keyframes(COUNTS_PER_MM, t0)
        spacing = round(SPACING_MM * COUNTS_PER_MM)
        pacing_rows = []
        t_seg = t0 + 200_000
        for v, secs in speeds:
            seg = [p for p in rig.pulses[n_pulses_before:] if t_seg <= p.t_us < t_seg + secs * 1e6]
            pos = [_path(kfs, p.t_us, p.pos) for p in seg]
            spans = [(a.t_us * 1000, b.t_us * 1000) for a, b in zip(seg, seg[1:])]
            pacing_rows.append((v, len(seg), [b - a for a, b in zip(pos, pos[1:])], spans))
            t_seg += secs * 1e6

        # stop byte: the instant '!' entered the chip's USB FIFO -> LASER_EN low; also
        # counted: stops that found LASER_EN already low (the scan paused itself, or a store
        # write's guard had dropped it), LASER_EN raised again after the '!' (that guard
        # ending), pulses begun after the '!', and stops LASER_EN never followed
        stops, late_pulses, already_low, raised, never = [], 0, 0, 0, 0
        for _ in range(n_stop):
            press()
            rig.advance(rng.uniform(5, 60))
            m = stamps.mark()
            device.stop()
            t_rx = stamps.wait("rx", m, "21", timeout_s=wait_s(1))
            rig.advance(100)  # 50x the budget: the stop has long acted
            en = [(int(w[2]), w[1]) for w in stamps.lines(m_session) if w[0] == "en"]
            high_at_rx = next((lv for t, lv in reversed(en) if t <= t_rx), "0") == "1"
            after = [(t, lv) for t, lv in en if t > t_rx]
            t_off = next((t for t, lv in after if lv == "0"), None)
            went_high = any(lv == "1" for _, lv in after)
            raised += went_high
            if not high_at_rx and not went_high:
                already_low += 1
                continue
            if t_off is None:
                never += 1
                continue
            stops.append((t_off - t_rx) / 1000)
            late_pulses += sum(1 for w in stamps.lines(m) if w[:2] == ["fire", "1"] and t_rx < int(w[2]) < t_off)
        m_stops_end = stamps.mark()
        rig.advance(max(1, motion.end_s * 1000 - (rig.now_us() - t0) / 1000 - 900))  # the hand holds still

        # trips while emitting (the scan, hand still): LASER_EN's own edge; each needs
        # a reset and a new ready delay
        edge_trips = []
        for i in range(n_edge):
            press()
            rig.advance(rng.uniform(20, 80))
            m = stamps.mark()
            rig.open("door")
            t_in = stamps.wait("in", m, "door", "0", timeout_s=wait_s(1))
            t_off = stamps.wait("en", m, "0", timeout_s=wait_s(1))
            t_low = stamps.wait("low", m, timeout_s=wait_s(1))
            edge_trips.append(((t_off - t_in) / 1000, (t_low - t_in) / 1000))
            rig.close("door")
            rig.release()
            rig.advance(30)
            for _ in range(50):  # the closing door is debounced
                if device.query_status()["open"] == "-":
                    break
                rig.advance(10)
            device.request("RESET")
            if i + 1 < n_edge:
                device.request("READY")
                rig.advance(st.ready_delay_ms + 1)
        rig.advance(50)
        heap_session = census(rig)
        feeds = stamps.times("wdt")
        lines = stamps.lines()
        used = [int(w[1]) for w in lines if w[0] == "wdt"]
        flashes = stamps.times("flash")
        en_spans = _spans(stamps.lines(m_session))
        win = {"trigger points": (m_session, m_points_end), "scan at 30, 90 mm/s": (m_scan, m_scan_end),
               "scan with stop bytes": (m_scan_end, m_stops_end)}
        loops_win = {k: _periods([int(ln.split()[-1]) for ln in rig.log[a:b] if ln.startswith("m wdt ")], en_spans)
                     for k, (a, b) in win.items()}
        emu_s = rig.now_us() / 1e6
    wall = time.perf_counter() - t_wall

    # the port's own heap and the census checked against gc.mem_alloc(), at the safe-mode REPL
    safe = safe_mode_heap(uf2)

    loops_all = _periods(feeds)
    loops_emit = _periods(feeds, en_spans)

    print("  interlock (door) -> LASER_EN low; trips at random instants of the loop:")
    dist("in STANDBY: pin -> the IRQ's write", trips, "p99 < 50 us", pct(trips, 0.99) < 50)
    dist("while emitting: pin -> enable edge", [e for e, _ in edge_trips], "p99 < 50 us",
         bool(edge_trips) and pct([e for e, _ in edge_trips], 0.99) < 50)
    print("  stop byte '!' (the instant it entered the chip's USB FIFO) -> LASER_EN low, while emitting:")
    dist("stop byte -> enable edge", stops, "p99 < 2000 us", pct(stops, 0.99) < 2000)
    print(f"    of {n_stop} stops: {already_low} found LASER_EN already low; after the '!' reached the chip"
          f" {late_pulses} pulses began, LASER_EN was raised again {raised} times, and {never} times not dropped"
          " within 100 ms")
    print(f"  pulses from the LASER_FIRE edges (trigger points, {POWER_W} W), error = measured - set:")
    for w, r, widths, periods in pulse_rows:
        werr = [abs(x - w) for x in widths]
        perr = [abs(x - 1e6 / r) for x in periods]
        ok = len(widths) == n_pulses and max(werr, default=99) <= 1
        print(f"    {w} us {r:2d} Hz: n={len(widths):3d} width err max {max(werr, default=float('nan')):6.3f} us "
              f"(budget <= 1 us: {verdict(ok)}); period err p50 {pct(perr, 0.5) if perr else float('nan'):7.1f} "
              f"max {max(perr, default=float('nan')):7.1f} us of {1e6 / r:.0f} (no budget)")
    print(f"  pacing: {SPACING_MM} mm = {spacing} counts; |path between consecutive pulses - spacing|, and grid points"
          " passed with no pulse:")
    for v, n, gaps, spans in pacing_rows:
        late = [abs(g - spacing) for g in gaps if g < 1.5 * spacing]
        skips = [(round(g / spacing) - 1, any(a <= t <= b for t in flashes)) for g, (a, b) in zip(gaps, spans)
                 if g >= 1.5 * spacing]
        skipped = sum(k for k, _ in skips)
        dist(f"scan {v} mm/s: {n} pulses, {skipped} skipped", late, "max <= 1 count, none skipped",
             bool(late) and max(late) <= 1 and not skipped, unit="counts")
        if skips:
            print(f"    the {len(skips)} gaps with skipped grid points: {sum(1 for _, f in skips if f)} span a flash"
                  " write (a session-store write: the loop blocked, LASER_EN low)")
        # a pulse late after a write makes its gap long and the next one short: either may hold the write
        wrote = [any(a <= t <= b for t in flashes) for a, b in spans]
        off = [wrote[i] or (i > 0 and wrote[i - 1]) for i, g in enumerate(gaps)
               if g < 1.5 * spacing and abs(g - spacing) > 1]
        if off:
            print(f"    the {len(off)} gaps off by more than 1 count: {sum(off)} hold a flash write or follow one")
    print("  control-loop period (one watchdog feed per loop; control_period_us 2000, watchdog 1000 ms):")
    dist("whole run from boot", loops_all, "(all states)", None)
    for k, v in loops_win.items():
        dist(f"emitting: {k}", v, "p99 <= 2100 us", bool(v) and pct(v, 0.99) <= 2100)
    dist("emitting, all", loops_emit, "p99 <= 2100 us, max < 1000 ms",
         bool(loops_emit) and pct(loops_emit, 0.99) <= 2100 and max(loops_emit) < 1e6)
    rises = [int(w[2]) for w in lines if w[:2] == ["fire", "1"]]
    long_ = [(feeds[i - 1], a, b, ua, ub) for i, (a, b, ua, ub) in enumerate(zip(feeds, feeds[1:], used, used[1:]))
             if i and b - a > 3 * 2_000_000 and any(s <= a and b <= e for s, e in en_spans)]
    kinds = {"a garbage collection (heap allocated fell)": lambda p, a, b, ua, ub: ub < ua,
             "a flash write": lambda p, a, b, ua, ub: any(a <= t <= b for t in flashes),
             "a pulse's step (a pulse began in it or the period before)":
                 lambda p, a, b, ua, ub: any(p <= t <= b for t in rises)}
    print(f"    periods over 6 ms while emitting: {len(long_)}; with " + ", ".join(
        f"{k} {sum(1 for x in long_ if f(*x))}" for k, f in kinds.items())
        + f"; none of these {sum(1 for x in long_ if not any(f(*x) for f in kinds.values()))}")
    whole = [(a, b) for a, b in zip(feeds, feeds[1:]) if b - a > 50_000_000]
    with_flash = sum(1 for a, b in whole if any(a <= t <= b for t in flashes))
    print(f"    periods over 50 ms in the whole run: {len(whole)}, {with_flash} of them with a flash write;"
          f" flash erases/programs in the run: {len(flashes)}")
    base = safe["repl_live"]
    print(f"  heap (census of the GC's table and pool in the chip's RAM, pool {heap_boot['pool']} bytes); the"
          f" budget is the heap in use, gc.mem_alloc(), the port's own share included:")
    for when, h in (("after boot", heap_boot), ("after the session", heap_session)):
        print(f"    {when:<18} live {h['live']:6d} bytes (firmware {h['live'] - base:6d}, the port's own {base} at an"
              f" idle REPL), allocated incl. garbage {h['used']:6d}: budget < {HEAP_BUDGET_B}: "
              f"{verdict(h['live'] < HEAP_BUDGET_B)}")
    print(f"    census check at the safe-mode REPL, firmware imported and its Controller built: census live "
          f"{safe['fw_live']} bytes, gc.mem_alloc() after gc.collect() {safe['fw_alloc']} "
          f"(idle REPL: {safe['repl_live']} vs {safe['repl_alloc']})")
    mods = safe["modules"]
    print(f"    where it goes (safe-mode REPL, gc.mem_alloc() after each import, dependencies first): modules"
          f" {sum(b for _, b in mods)} bytes, of which the qstr pool {safe['qstr_bytes']} (the names and short"
          f" strings of all of them: {safe['qstrs']} qstrs in {safe['qstr_pools']} pools, docs/boards.md"
          f" \"Heap on the rp2\"); the Controller and board objects {safe['objects']}; the largest modules:")
    top = sorted(mods, key=lambda m: -m[1])
    for i in range(0, 12, 4):
        print("      " + "  ".join(f"{n:<11}{b:5d}" for n, b in top[i:i + 4]))
    print(f"  ({emu_s:.1f} s emulated in {wall:.0f} s wall, {wall / emu_s:.0f}x slower)")


def census(rig: UnixRig) -> dict[str, int]:
    return {k: int(v) for k, v in (w.split("=") for w in rig.cmd("heap").split())}


def _path(kfs, t_us: int, pos: int) -> int:
    """Path travelled from the motion's start to a pulse at count `pos` (reversals add)."""
    total = 0
    for (_, xa), (tb, xb) in zip(kfs, kfs[1:]):
        if tb >= t_us:
            return total + abs(pos - xa)
        total += abs(xb - xa)
    return total + abs(pos - kfs[-1][1])


def _periods(feeds: list[int], spans: list[tuple[int, int]] | None = None) -> list[float]:
    """Microseconds between consecutive watchdog feeds, only inside `spans` if given."""
    return [(b - a) / 1000 for a, b in zip(feeds, feeds[1:])
            if spans is None or any(s <= a and b <= e for s, e in spans)]


def _spans(lines: list[list[str]]) -> list[tuple[int, int]]:
    """(rise, fall) emulated ns of each LASER_EN high span."""
    spans, rise = [], None
    for w in lines:
        if w[0] == "en":
            if w[1] == "1":
                rise = int(w[2])
            elif rise is not None:
                spans.append((rise, int(w[2])))
                rise = None
    return spans


def safe_mode_heap(uf2: Path) -> dict[str, int]:
    """Boot with the SAFE_MODE jumper: at the free REPL, gc.mem_alloc() after
    gc.collect() beside the census, idle and with the firmware's objects built
    (main.py's imports and the Controller of app.main, not run)."""
    with tempfile.TemporaryDirectory(prefix="hilt-bench-") as tmp:
        path = os.path.join(tmp, "rig.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(300)
        inputs = carrier_inputs()
        inputs[rp2_pins()["SAFE_MODE"]] = 0
        with Rp2Emulator(uf2, inputs=inputs, rig_socket=path, measure=True) as emu:
            repl = serial.Serial(emu.open_pty(), timeout=300)
            emu.start()
            rig = UnixRig(listener.accept()[0])
            listener.close()
            try:
                _read_until(repl, b">>> ")

                def alloc(code: str) -> int:
                    return int(_raw_exec(repl, code + "\ngc.collect()\nprint(gc.mem_alloc())"))

                out = {"repl_alloc": alloc("import gc, micropython"), "repl_live": census(rig)["live"]}
                qstr0 = _qstr_bytes(_raw_exec(repl, "micropython.qstr_info()"))
                before, out["modules"] = out["repl_alloc"], []
                for name in import_order():
                    now = alloc("import " + name)
                    out["modules"].append((name, now - before))
                    before = now
                info = _raw_exec(repl, "micropython.qstr_info()")
                out["qstr_bytes"] = _qstr_bytes(info) - qstr0
                out["qstrs"] = int(info.split("n_qstr=")[1].split(",")[0])
                out["qstr_pools"] = int(info.split("n_pool=")[1].split(",")[0])
                out["fw_alloc"] = alloc("import app, board\nfrom controller import Controller\n"
                                        "c = Controller(board.make())")
                out["fw_live"] = census(rig)["live"]
                out["objects"] = out["fw_alloc"] - before
                return out
            finally:
                rig.close_channel()
                repl.close()


def import_order(board: str = "rp2") -> list[str]:
    """The board image's modules (boards/build.py), each after the modules it
    imports, in the order its main.py imports them (which module first interns a
    shared name, and pays for it, depends on that order)."""
    import ast
    import importlib.util

    spec = importlib.util.spec_from_file_location("hilt_build", ROOT / "boards" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    srcs = {p.stem: p for p in build.sources(board) if p.name not in build.SOURCE_ONLY}
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in srcs:
            return
        order.append(name)  # a guard against cycles; moved to its place below
        for node in ast.walk(ast.parse(srcs[name].read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    visit(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module:
                visit(node.module)
        order.remove(name)
        order.append(name)

    main_py = ast.parse((ROOT / "boards" / board / "main.py").read_text())
    main = [alias.name for node in ast.walk(main_py) if isinstance(node, ast.Import) for alias in node.names]
    for name in main + sorted(srcs):
        visit(name)
    return order


def _qstr_bytes(info: str) -> int:
    """n_total_bytes of micropython.qstr_info()'s first line."""
    return int(info.split("n_total_bytes=")[1].split()[0])


def _read_until(ser: serial.Serial, end: bytes) -> bytes:
    buf = b""
    while not buf.endswith(end):
        got = ser.read(1)
        if not got:
            raise RigError(f"the emulated REPL did not say {end!r}; it said {buf[-200:]!r}")
        buf += got
    return buf


def _raw_exec(ser: serial.Serial, code: str) -> str:
    """Run `code` in the raw REPL (Ctrl-A ... Ctrl-D), back to the friendly REPL after; its output."""
    ser.write(b"\x01")
    _read_until(ser, b"raw REPL; CTRL-B to exit\r\n>")
    ser.write(code.encode() + b"\x04")
    reply = _read_until(ser, b"\x04>")
    ser.write(b"\x02")
    _read_until(ser, b">>> ")
    body = reply[2:-2]  # OK ... \x04 error \x04>
    out, _, err = body.partition(b"\x04")
    if err.strip():
        raise RigError(f"the emulated REPL raised: {err.decode(errors='replace')}")
    return out.decode().strip()
