"""The emulated RP2040 (boards/rp2/emu/emu.mjs) behind a pty.

The emulator carries the board's USB CDC on its stdin/stdout; a pump thread
copies bytes between those pipes and a pty master, so the host opens the pty's
slave path with pyserial exactly as it opens /dev/ttyACM0 on a real Pico.

`Rp2Bench` is the two-Pico bench: the device image and the bench rig image
(boards/rig_pico) on two emulated chips wired pin to pin, each chip's CDC on
its own pty, so `pytest --target serial:DUT_PTY --rig serial:RIG_PTY` runs the
code path of a real bench:

    python -m handpiece.rp2emu bench DEVICE.uf2 RIG.uf2 [-- CMD ARG...]

prints the two pty paths once both chips have booted and runs until stopped,
or runs CMD (its `{dut}` and `{rig}` replaced by the paths) and exits with its
status.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMU_DIR = ROOT / "boards" / "rp2" / "emu"


def stderr_tail(path: Path) -> str:
    """The last 2,000 characters a child process wrote to its stderr file ("" if none)."""
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


class EmulatorError(RuntimeError):
    pass


def rp2_pins(board: str = "rp2") -> dict[str, int]:
    """NAME -> GPIO from boards/BOARD/pins.py (its `NAME = const(N)` lines)."""
    pins = {}
    for line in (ROOT / "boards" / board / "pins.py").read_text().splitlines():
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


def pump(stop: threading.Event, master: int, in_fd: int, out_fd: int, seen=None) -> None:
    """Copy pty master -> in_fd and out_fd -> pty master until `stop` (or
    out_fd ends: the emulator exited). seen(bytes) sees what the chip sends."""
    while not stop.is_set():
        ready, _, _ = select.select([master, out_fd], [], [], 0.1)
        try:
            if master in ready:
                data = os.read(master, 4096)
                if data:
                    os.write(in_fd, data)
            if out_fd in ready:
                data = os.read(out_fd, 4096)
                if not data:
                    return
                if seen is not None:
                    seen(data)
                os.write(master, data)
        except OSError:
            return


class _NodeProcess:
    """The emulator's node process as both front ends keep it: its stderr in
    a temporary folder, and one teardown (threads, process group, fds)."""

    proc: subprocess.Popen | None
    stderr_path: Path
    _tmp: tempfile.TemporaryDirectory
    _stop: threading.Event

    def stderr(self) -> str:
        return stderr_tail(self.stderr_path)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _shut(self, threads, fds) -> None:
        self._stop.set()
        for thread in threads:
            if thread:
                thread.join(timeout=5)
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class Rp2Emulator(_NodeProcess):
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
        pump(self._stop, self._master, self.proc.stdin.fileno(), self.proc.stdout.fileno())

    def edges(self, gpio: int) -> list[tuple[int, int]]:
        """(emulated ns, level) of each logged level change of a traced GPIO."""
        out = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            w = line.split()
            if len(w) == 5 and w[1] == "edge" and w[2] == str(gpio) and w[3] in "01":
                out.append((int(w[4]), int(w[3])))
        return out

    def close(self) -> None:
        self._shut([self._pump_thread], [self._master, self._slave])
        self._master = self._slave = -1


# The two-Pico bench's wiring (docs/boards.md, "Bench rig"): rig GPIO name ->
# device GPIO name for the lines the rig drives, and the other way for the
# device's outputs the rig watches. The numbers come from the two pins.py.
RIG_DRIVES = {"QUAD_A": "ENC_A", "QUAD_B": "ENC_B",
              **{n: n for n in ("KEY", "DOOR", "ESTOP", "HANDPIECE", "TEMP", "FLOW", "FOOT")}}
DEVICE_DRIVES = {"LASER_EN": "EN_IN", "LASER_FIRE": "FIRE_IN", "INDICATOR": "IND_IN"}


def bench_wires() -> list[list]:
    """[from chip, GPIO, to chip, GPIO] for every wire between the device ("dut") and the rig."""
    dev, rig = rp2_pins(), rp2_pins("rig_pico")
    return ([["rig", rig[r], "dut", dev[d]] for r, d in RIG_DRIVES.items()]
            + [["dut", dev[d], "rig", rig[r]] for d, r in DEVICE_DRIVES.items()])


def bench_config(dut_uf2: Path, rig_uf2: Path, dut_cdc: str, rig_cdc: str, slice_ns: int) -> dict:
    """emu.mjs --pair's configuration: the device first (its outputs reach the rig
    exactly; the rig's reach the device within one slice), SAFE_MODE jumpers
    open on both, the rig's POWER_RELAY as the device's supply, and the laser
    driver stand-in with its photodiode on the device."""
    dev, rig = rp2_pins(), rp2_pins("rig_pico")
    return {
        "slice_ns": slice_ns,
        "chips": {"dut": {"uf2": str(dut_uf2), "cdc": dut_cdc, "inputs": {dev["SAFE_MODE"]: 1}},
                  "rig": {"uf2": str(rig_uf2), "cdc": rig_cdc, "inputs": {rig["SAFE_MODE"]: 1}}},
        "wires": bench_wires(),
        "supply": ["rig", rig["POWER_RELAY"], "dut"],
        "laser": {"chip": "dut", **rig_pins()},
    }


class Rp2Bench(_NodeProcess):
    """The device image and the bench rig image on two emulated RP2040s in one
    emulator process (emu.mjs --pair), each chip's USB CDC on its own pty.
    start() returns the two pty paths; wait_booted() waits for both boot lines."""

    SLICE_NS = 10_000  # lockstep slice: a rig output reaches the device up to this late

    def __init__(self, dut_uf2: Path, rig_uf2: Path):
        self.uf2 = {"dut": Path(dut_uf2), "rig": Path(rig_uf2)}
        for name, path in self.uf2.items():
            if not path.is_file():
                board = "rp2" if name == "dut" else "rig_pico"
                raise EmulatorError(f"no UF2 image at {path}: run `make image BOARD={board}`")
        self.node = find_node()
        self._tmp = tempfile.TemporaryDirectory(prefix="hilt-bench-")
        self.stderr_path = Path(self._tmp.name) / "emu-stderr.txt"
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._fds: list[int] = []
        self._threads: list[threading.Thread] = []
        self.booted = {"dut": threading.Event(), "rig": threading.Event()}
        self.boot_wall_s: dict[str, float] = {}

    def start(self, timeout_s: float = 60.0) -> dict[str, str]:
        """Start the emulator; {"dut": pty path, "rig": pty path}."""
        listeners, paths = {}, {}
        for name in ("dut", "rig"):
            listeners[name] = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listeners[name].bind(os.path.join(self._tmp.name, f"{name}.sock"))
            listeners[name].listen(1)
            listeners[name].settimeout(timeout_s)
        config = Path(self._tmp.name) / "pair.json"
        config.write_text(json.dumps(bench_config(self.uf2["dut"], self.uf2["rig"],
                                                  listeners["dut"].getsockname(), listeners["rig"].getsockname(),
                                                  self.SLICE_NS)))
        self._t0 = time.monotonic()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([self.node, str(EMU_DIR / "emu.mjs"), "--pair", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        try:
            for name in ("dut", "rig"):
                conn = listeners[name].accept()[0]
                master, slave = os.openpty()
                tty.setraw(slave)
                self._fds += [master, slave, conn.detach()]
                paths[name] = os.ttyname(slave)
                thread = threading.Thread(target=pump, daemon=True,
                                          args=(self._stop, master, self._fds[-1], self._fds[-1], self._seer(name)))
                thread.start()
                self._threads.append(thread)
        except OSError as e:
            self.close()
            raise EmulatorError(f"the two-chip emulator did not connect: {e}\n{self.stderr()}") from e
        finally:
            for sock in listeners.values():
                sock.close()
        return paths

    def _seer(self, name: str):
        """A pump's `seen`: notes the chip's first boot line (the device's
        `boot` event, the rig's `r T boot`) and its wall time."""
        tail = b""

        def seen(data: bytes) -> None:
            nonlocal tail
            if self.booted[name].is_set():
                return
            tail = (tail + data)[-256:]
            if re.search(rb"[ ,]boot\b", tail):
                self.boot_wall_s[name] = time.monotonic() - self._t0
                self.booted[name].set()
        return seen

    def wait_booted(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for name, event in self.booted.items():
            while not event.wait(0.2):
                if not self.alive() or time.monotonic() > deadline:
                    raise EmulatorError(f"the {name} chip did not boot on the two-chip bench; its stderr:\n"
                                        f"{self.stderr()}")

    def close(self) -> None:
        self._shut(self._threads, self._fds)
        self._fds = []


BENCH_USAGE = "usage: python -m handpiece.rp2emu bench DEVICE.uf2 RIG.uf2 [-- CMD ARG...]  ({dut}, {rig}: the ptys)"
BENCH_BOOT_S = 300.0  # hang protection: both chips boot in tens of seconds wall on 2 loaded cores


def main(argv: list[str]) -> int:
    cmd: list[str] = []
    if "--" in argv:
        cmd = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    if len(argv) != 3 or argv[0] != "bench" or ("--" in sys.argv and not cmd):
        print(BENCH_USAGE, file=sys.stderr)
        return 2
    try:
        bench = Rp2Bench(Path(argv[1]), Path(argv[2]))
    except EmulatorError as e:
        print(f"rp2emu: {e}", file=sys.stderr)
        return 2
    try:
        paths = bench.start()
        bench.wait_booted(BENCH_BOOT_S)
        print(f"dut: {paths['dut']}\nrig: {paths['rig']}\n"
              f"booted (wall s): dut {bench.boot_wall_s['dut']:.1f}, rig {bench.boot_wall_s['rig']:.1f}", flush=True)
        if cmd:
            return subprocess.call([a.replace("{dut}", paths["dut"]).replace("{rig}", paths["rig"]) for a in cmd])
        while bench.alive():
            time.sleep(0.5)
        print(f"rp2emu: the emulator stopped:\n{bench.stderr()}", file=sys.stderr)
        return 1
    except EmulatorError as e:
        print(f"rp2emu: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print(bench.stderr(), file=sys.stderr)
        bench.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
