"""The real boards, one row each; everything that lists boards reads it.

build.py (what goes into an image, for which arch), typecheck.py (which
stubs), boards.mk (the names `make build BOARD=` accepts),
host/tests/test_boards.py (which checks run on which board) and the board
tests' fakes (tests/mpcheck.py, tests/fakecheck.py) derive from here.

A new board on a known port is a row here, its folder boards/NAME and its
logic tests boards/tests/LOGIC; a new port also needs a PORTS row and fakes
of its port modules (boards/fakes). The simulated board (boards/unix) is not
built, so it has no row.

    python3 boards/table.py              prints the board names (boards.mk reads them)
    python3 boards/table.py --port rp2   only the boards on that port (those with a UF2 image)

Plain literals and no imports: CPython reads this file and so does the
MicroPython Unix port that runs the board tests.
"""

# port -> the official stubs package (pinned; typecheck.py installs it into
# build/stubs/PORT) and the port modules its boards import, faked in boards/fakes.
PORTS = {
    "rp2": {"stubs": "micropython-rp2-rpi-pico-stubs==1.29.0.post1", "fakes": ("machine", "rp2")},
    "stm32": {"stubs": "micropython-stm32-pybv11-stubs==1.29.0.post1", "fakes": ("machine", "pyb")},
    "esp32": {"stubs": "micropython-esp32-esp32-generic-s3-stubs==1.29.0.post1", "fakes": ("machine", "esp32")},
}

# The shared modules (boards/shared) every MCU board imports.
_MCU = ("boardbase", "filestore", "laserbase", "mcu", "pulselog", "reference", "softarm", "storeguard")

# name -> role ("device": runs the firmware core; "rig": the bench rig, no
# core), port (a PORTS key), mcu, march (mpy-cross -march), shared (the
# boards/shared modules in its image) and logic (its tests in boards/tests).
BOARDS = {
    "rp2": {"role": "device", "port": "rp2", "mcu": "RP2040", "march": "armv6m",
            "shared": _MCU + ("stdiolink",), "logic": "rp2_logic.py"},
    "stm32": {"role": "device", "port": "stm32", "mcu": "STM32F405", "march": "armv7emsp",
              "shared": _MCU, "logic": "stm32_logic.py"},
    "esp32": {"role": "device", "port": "esp32", "mcu": "ESP32-S3", "march": "xtensawin",
              "shared": _MCU + ("stdiolink",), "logic": "esp32_logic.py"},
    "rig_pico": {"role": "rig", "port": "rp2", "mcu": "RP2040", "march": "armv6m",
                 "shared": ("keyframes", "stdiolink"), "logic": "rig_logic.py"},
}


def devices():
    """The boards that run the firmware core, in table order."""
    return [name for name, row in BOARDS.items() if row["role"] == "device"]


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--port"] and len(sys.argv) == 3:
        print(" ".join(name for name, row in BOARDS.items() if row["port"] == sys.argv[2]))
    else:
        print(" ".join(BOARDS))
