"""The emulated RP2040 (boards/rp2/emu/emu.mjs) behind a pty.

The emulator carries the board's USB CDC on its stdin/stdout; a pump thread
copies bytes between those pipes and a pty master, so the host opens the pty's
slave path with pyserial exactly as it opens /dev/ttyACM0 on a real Pico.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMU_DIR = ROOT / "boards" / "rp2" / "emu"


class EmulatorError(RuntimeError):
    pass


def rp2_pins() -> dict[str, int]:
    """NAME -> GPIO from boards/rp2/pins.py (its `NAME = const(N)` lines)."""
    pins = {}
    for line in (ROOT / "boards" / "rp2" / "pins.py").read_text().splitlines():
        m = re.match(r"([A-Z_]+) = const\((\d+)\)", line)
        if m:
            pins[m.group(1)] = int(m.group(2))
    return pins


def rig_pins() -> dict[str, int]:
    """The rig channel's names (docs/rig.md) -> GPIO: inputs it drives, outputs it reports."""
    p = rp2_pins()
    names = {n.lower(): p[n] for n in ("KEY", "DOOR", "ESTOP", "HANDPIECE", "TEMP", "FLOW", "FOOT")}
    names.update(en=p["LASER_EN"], ind=p["INDICATOR"], fire=p["LASER_FIRE"], enc_a=p["ENC_A"], enc_b=p["ENC_B"],
                 pd_reset=p["PD_RESET"], pd_adc=p["PD_ADC"], power=p["POWER_SET"])
    names["pd_uj_per_lsb"] = board_const("_PD_UJ_PER_LSB")  # the photodiode integrator the board is calibrated for
    names["power_full_scale_w"] = board_const("_POWER_FULL_SCALE_W")
    return names


def board_const(name: str) -> int:
    """A `NAME = const(N)` calibration constant of boards/rp2/board.py."""
    m = re.search(rf"^{name} = const\(([\d_]+)\)", (ROOT / "boards" / "rp2" / "board.py").read_text(), re.M)
    if not m:
        raise EmulatorError(f"boards/rp2/board.py has no {name} = const(N)")
    return int(m.group(1))


def carrier_inputs() -> dict[int, int]:
    """GPIO -> level the carrier board holds at power-on: no SAFE_MODE jumper,
    every interlock contact closed (healthy), footswitch released, encoder at rest."""
    p = rp2_pins()
    levels = {p["SAFE_MODE"]: 1, p["FOOT"]: 0, p["ENC_A"]: 0, p["ENC_B"]: 0}
    for name in ("KEY", "DOOR", "ESTOP", "HANDPIECE", "TEMP", "FLOW"):
        levels[p[name]] = 1
    return levels


def find_node() -> str:
    node = shutil.which("node")
    if not node:
        raise EmulatorError("no `node` on PATH: the emulated rp2 needs Node.js 18 or newer")
    if not (EMU_DIR / "node_modules" / "rp2040js").is_dir():
        raise EmulatorError(f"rp2040js is not installed in {EMU_DIR.relative_to(ROOT)}: run `make setup`")
    return node


class Rp2Emulator:
    """start() boots `uf2` and returns the pty path; close() stops everything."""

    def __init__(self, uf2: Path, inputs: dict[int, int] | None = None, trace: tuple[int, ...] = (),
                 rig_socket: str | None = None, measure: bool = False):
        self.uf2 = Path(uf2)
        self.rig_socket = rig_socket  # a Unix socket the host listens on: the emulator serves the rig there
        self.measure = measure  # the bench's `m` stamps and `heap` census on the rig channel (emu/measure.mjs)
        self.trace = trace  # GPIOs whose edges the emulator logs (edges())
        self.inputs = carrier_inputs() if inputs is None else inputs
        if not self.uf2.is_file():
            raise EmulatorError(f"no UF2 image at {self.uf2}: run `make image BOARD=rp2`")
        self.node = find_node()
        self._tmp = tempfile.TemporaryDirectory(prefix="hilt-emu-")
        self.stderr_path = Path(self._tmp.name) / "emu-stderr.txt"
        self.proc: subprocess.Popen | None = None
        self._master = -1
        self._slave = -1
        self._stop = threading.Event()
        self._pump_thread: threading.Thread | None = None

    def open_pty(self) -> str:
        """The pty's slave path; open it before start() so no boot line is lost."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or line editing: the protocol is binary-safe
        return os.ttyname(self._slave)

    def start(self) -> None:
        if self._master < 0:
            self.open_pty()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [self.node, str(EMU_DIR / "emu.mjs"), str(self.uf2)]
                + [a for gpio, level in sorted(self.inputs.items()) for a in ("--in", f"{gpio}={level}")]
                + [a for gpio in self.trace for a in ("--trace", str(gpio))]
                + (["--rig", self.rig_socket, "--rig-pins", json.dumps(rig_pins())] if self.rig_socket else [])
                + (["--measure"] if self.measure else []),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True,
            )
        self._stop.clear()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        """Copy pty -> emulator stdin and emulator stdout -> pty until close()."""
        out_fd = self.proc.stdout.fileno()
        in_fd = self.proc.stdin.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, out_fd], [], [], 0.1)
            try:
                if self._master in ready:
                    data = os.read(self._master, 4096)
                    if data:
                        os.write(in_fd, data)
                if out_fd in ready:
                    data = os.read(out_fd, 4096)
                    if not data:
                        return  # the emulator exited
                    os.write(self._master, data)
            except OSError:
                return

    def edges(self, gpio: int) -> list[tuple[int, int]]:
        """(emulated ns, level) of each logged level change of a traced GPIO."""
        out = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            w = line.split()
            if len(w) == 5 and w[1] == "edge" and w[2] == str(gpio) and w[3] in "01":
                out.append((int(w[4]), int(w[3])))
        return out

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        self._stop.set()
        if self._pump_thread:
            self._pump_thread.join(timeout=5)
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
