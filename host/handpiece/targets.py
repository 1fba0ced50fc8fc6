"""Targets: where the firmware runs. Each gives a Device (and a Rig if it has one).

UnixPortTarget runs `boards/unix/main.py` in the MicroPython Unix port behind
a pty: the firmware gets the pty master as stdin/stdout, and the host opens
the slave's /dev/pts/N path with pyserial exactly as it would open
/dev/ttyACM0. SerialTarget talks to a real board on a serial port.
Rp2EmuTarget boots the flashable rp2 UF2 on an emulated RP2040
(boards/rp2/emu) and reaches its USB CDC through a pty the same way.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

from .device import Device
from .rig import RigError, UnixRig
from .rp2emu import EmulatorError, Rp2Emulator
from .transport import SerialTransport, TransportError

ROOT = Path(__file__).resolve().parents[2]
ENV_MICROPYTHON = "MICROPY_MICROPYTHON"  # the same variable MicroPython's test runner reads
START_TIMEOUT_S = 10.0


class TargetError(RuntimeError):
    pass


def find_micropython(explicit: str | None = None) -> str:
    """The `micropython` binary: an explicit path, else $MICROPY_MICROPYTHON,
    else the one installed beside this Python (the venv), else PATH."""
    for cand in (explicit, os.environ.get(ENV_MICROPYTHON)):
        if cand:
            if not (os.path.isfile(cand) and os.access(cand, os.X_OK)):
                raise TargetError(f"micropython binary {cand!r} does not exist or is not executable")
            return cand
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise TargetError(f"no micropython binary: run `make setup`, or set {ENV_MICROPYTHON}")
    return found


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the host process dies, however it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class UnixPortTarget:
    name = "unix"

    def __init__(self, micropython: str | None = None, clock: str = "virtual", store: Path | None = None,
                 board_env: dict[str, str] | None = None):
        self.micropython = find_micropython(micropython)
        self.clock = clock
        self.board_env = board_env or {}  # board variant settings (HP_READY_DELAY_MS for benchmarks)
        self._tmp = tempfile.TemporaryDirectory(prefix="hilt-")
        self.store = store or Path(self._tmp.name) / "store.bin"
        self.proc: subprocess.Popen | None = None
        self.device: Device | None = None
        self.rig: UnixRig | None = None
        self.stderr_path = Path(self._tmp.name) / "stderr.txt"

    def open(self) -> tuple[Device, UnixRig]:
        rig_path = os.path.join(self._tmp.name, "rig.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(rig_path)
        listener.listen(1)
        listener.settimeout(0.05)
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing before pyserial takes it
        fl = fcntl.fcntl(master, fcntl.F_GETFL)
        fcntl.fcntl(master, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            # Open the port before the firmware can write: pyserial flushes
            # the input when it opens, which would drop the boot lines.
            transport = SerialTransport(os.ttyname(slave))
        except TransportError:
            os.close(master)
            os.close(slave)
            listener.close()
            raise
        os.close(slave)
        env = dict(os.environ, HP_RIG=rig_path, HP_STORE=str(self.store), HP_CLOCK=self.clock, **self.board_env)
        env.pop("MICROPYPATH", None)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [self.micropython, str(ROOT / "boards" / "unix" / "main.py")],
                stdin=master, stdout=master, stderr=err, env=env,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        os.close(master)
        self.device = Device(transport)
        try:
            conn = self._accept(listener)
        finally:
            listener.close()
        self.rig = UnixRig(conn)
        return self.device, self.rig

    def _accept(self, listener: socket.socket) -> socket.socket:
        """The firmware's rig connection, or a clear error if it died or hung."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                return listener.accept()[0]
            except socket.timeout:
                continue
        err = self.stderr()
        self.close()
        raise TargetError(f"the firmware did not start (no rig connection); its stderr:\n{err}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.device:
            self.device.close()
        if self.rig:
            self.rig.close_channel()
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        self._tmp.cleanup()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


class SerialTarget:
    name = "serial"

    def __init__(self, port: str, baudrate: int = 115200):
        self.port = port
        self.baudrate = baudrate
        self.device: Device | None = None
        self.rig = None  # a bench rig would be attached here

    def open(self) -> tuple[Device, None]:
        if not os.path.exists(self.port):
            raise TargetError(f"serial port {self.port} does not exist (is the board plugged in?)")
        self.device = Device(SerialTransport(self.port, self.baudrate))
        return self.device, None

    def close(self) -> None:
        if self.device:
            self.device.close()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


def _load_script(name: str, path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_IMAGE_DIR: tempfile.TemporaryDirectory | None = None


def rp2_image() -> Path:
    """The project UF2 built from this tree (once per process), as `make image BOARD=rp2` builds it."""
    global _IMAGE_DIR
    if _IMAGE_DIR is None:
        tmp = tempfile.TemporaryDirectory(prefix="hilt-rp2img-")
        build = _load_script("hilt_build", ROOT / "boards" / "build.py")
        uf2image = _load_script("hilt_uf2image", ROOT / "boards" / "rp2" / "image" / "uf2image.py")
        out = build.build("rp2", Path(tmp.name) / "rp2")
        files = {p.name: p.read_bytes() for p in out.iterdir()}
        (Path(tmp.name) / "handpiece-rp2.uf2").write_bytes(
            uf2image.project_image(uf2image.BASE_UF2.read_bytes(), files))
        _IMAGE_DIR = tmp
    return Path(_IMAGE_DIR.name) / "handpiece-rp2.uf2"


class Rp2EmuRig(UnixRig):
    """The emulator's rig channel: the simulated board's protocol (docs/rig.md)
    on emulated time. `adv` waits for the emulation, which runs 10-50x slower
    than the chip: its hang protection scales with the emulator's speed as
    measured on this run, never a guess."""

    def __init__(self, conn: socket.socket):
        self._wall0 = time.monotonic()
        super().__init__(conn)
        self._t0_us = int(self.cmd("now"))

    def slowdown(self) -> float:
        """Wall seconds per emulated second so far (at least 1)."""
        emulated_s = max(1e-3, (int(self.cmd("now")) - self._t0_us) / 1e6)
        return max(1.0, (time.monotonic() - self._wall0) / emulated_s)

    def advance(self, ms: float) -> int:
        us = round(ms * 1000)
        if us <= 0:
            raise RigError("advance needs a positive time")
        self._feed(self.now_us() + us + 1_000_000)
        return int(self.cmd(f"adv {us}", timeout_s=30.0 + 4 * self.slowdown() * us / 1e6))


class Rp2EmuTarget:
    """The rp2 image on the emulated RP2040, with the emulator's rig channel
    (inputs, enable/indicator edges, resets, time on the emulated clock)."""

    name = "rp2-emu"
    BOOT_TIMEOUT_S = 300.0  # hang protection: the emulator boots in ~10-30 s wall on 2 loaded cores

    def __init__(self, uf2: str | None = None):
        self.uf2 = Path(uf2) if uf2 else None
        self.emu: Rp2Emulator | None = None
        self.device: Device | None = None
        self.rig: Rp2EmuRig | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def open(self) -> tuple[Device, UnixRig]:
        self._tmp = tempfile.TemporaryDirectory(prefix="hilt-emurig-")
        rig_path = os.path.join(self._tmp.name, "rig.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(rig_path)
        listener.listen(1)
        listener.settimeout(self.BOOT_TIMEOUT_S)
        try:
            self.emu = Rp2Emulator(self.uf2 or rp2_image(), rig_socket=rig_path)
            path = self.emu.open_pty()
            transport = SerialTransport(path)  # before boot: the boot line is kept
            self.emu.start()
            conn = listener.accept()[0]
        except (EmulatorError, TransportError, OSError) as e:
            self.close()
            raise TargetError(f"{e}\n{self.stderr()}") from e
        finally:
            listener.close()
        self.device = Device(transport)
        self.rig = Rp2EmuRig(conn)
        deadline = time.monotonic() + self.BOOT_TIMEOUT_S
        while not self.device.events_named("boot"):
            if not self.emu.alive() or time.monotonic() > deadline or self.device.events_named("exception"):
                err = self.stderr()
                self.close()
                raise TargetError(f"the rp2 image did not boot on the emulator; its stderr:\n{err}")
            time.sleep(0.05)
        return self.device, self.rig

    def stderr(self) -> str:
        return self.emu.stderr() if self.emu else ""

    def close(self) -> None:
        if self.device:
            self.device.close()
        if self.rig:
            self.rig.close_channel()
        if self.emu:
            self.emu.close()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


def make_target(spec: str, micropython: str | None = None, clock: str = "virtual"):
    """'unix', 'serial:/dev/ttyACM0[@baud]', 'rp2-emu' (image built from the tree) or 'rp2-emu:IMAGE.uf2'."""
    if spec == "unix":
        return UnixPortTarget(micropython, clock=clock)
    if spec == "rp2-emu" or spec.startswith("rp2-emu:"):
        return Rp2EmuTarget(spec[8:] or None)
    if spec.startswith("serial:"):
        port, _, baud = spec[7:].partition("@")
        if not port:
            raise TargetError("serial target needs a port: serial:/dev/ttyACM0")
        if baud and not baud.isdigit():
            raise TargetError(f"baud rate must be a whole number, got {baud!r}")
        return SerialTarget(port, int(baud) if baud else 115200)
    raise TargetError(f"unknown target {spec!r}: use 'unix', 'serial:/dev/ttyACM0' or 'rp2-emu[:IMAGE.uf2]'")
