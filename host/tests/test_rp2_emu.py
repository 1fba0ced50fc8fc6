"""The project's rp2 UF2 on the emulated RP2040 (boards/rp2/emu), reached over
a pty exactly as a host reaches a Pico's /dev/ttyACM0.

The waits below are host-side limits for a failure only (the emulator runs
10-50x slower than the chip); what is asserted comes from the device's own
lines and its emulated clock.
"""
import importlib.util
import re
import time
from pathlib import Path

import pytest
import serial

from handpiece.frames import parse
from handpiece.rp2emu import Rp2Emulator

ROOT = Path(__file__).resolve().parents[2]
BOOT_WAIT_S = 180  # a loaded 2-core CI machine; the boot line comes after ~20 s there


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    build = _load("build", ROOT / "boards" / "build.py")
    uf2image = _load("uf2image", ROOT / "boards" / "rp2" / "image" / "uf2image.py")
    tmp = tmp_path_factory.mktemp("emu")
    files = {p.name: p.read_bytes() for p in build.build("rp2", tmp / "rp2").iterdir()}
    path = tmp / "handpiece-rp2.uf2"
    path.write_bytes(uf2image.project_image(uf2image.BASE_UF2.read_bytes(), files))
    return path


def read_lines_until(ser, emu, pattern, wait_s):
    """Device lines up to and including the first that matches `pattern`."""
    seen = []
    buf = b""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        buf += ser.read(max(1, ser.in_waiting))
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            seen.append(line.rstrip(b"\r"))
            if re.search(pattern, seen[-1]):
                return seen
        if not emu.alive():
            break
    pytest.fail("no line matching %r; the device said:\n%s\nemulator stderr:\n%s"
                % (pattern, b"\n".join(seen[-20:]).decode(errors="replace"), emu.stderr()))


def test_image_boots_into_the_controller_over_the_serial_path(image):
    with Rp2Emulator(image) as emu:
        path = emu.open_pty()
        ser = serial.Serial(path, timeout=0.1)  # opened before boot: no line is lost
        emu.start()
        lines = read_lines_until(ser, emu, rb" boot fw=| exception ", BOOT_WAIT_S)
        boot = parse(lines[-1])
        assert boot.name == "boot", lines
        assert boot.fields["board"] == "rp2"
        assert boot.fields["reset"] == "power"
        assert boot.fields["fw"] == re.search(r'FW_VERSION = "(.*)"', (ROOT / "firmware" / "version.py").read_text())[1]
        # The controller then reaches STANDBY, its emulated clock still counting from power-on.
        standby = parse(read_lines_until(ser, emu, rb"state \w+>STANDBY", BOOT_WAIT_S)[-1])
        assert standby.t_ms >= boot.t_ms
        ser.close()
