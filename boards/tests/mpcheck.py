"""Helpers for the board tests that run inside the MicroPython Unix port.

`use(board)` puts the fakes, the firmware core, the shared modules and the
board folder on sys.path (fakes first, so `machine` is the fake) and tells
the fakes which port they stand for. `run(ns)`
calls every function named test_* and prints one line per result; the
process exits 1 when any failed, so the pytest driver sees it.
"""
import sys

ROOT = sys.path[0] + "/../.."


_PORT = {"rp2": "rp2", "rig_pico": "rp2", "stm32": "stm32", "esp32": "esp32"}


def use(board):
    for p in (ROOT + "/boards/" + board, ROOT + "/boards/shared", ROOT + "/firmware", ROOT + "/boards/fakes"):
        sys.path.insert(0, p)
    if board in _PORT:
        import fakeport

        fakeport.NAME = _PORT[board]  # before the board imports machine: the fakes offer that port's names


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def eq(got, want, what):
    if got != want:
        raise Failed("%s: got %r, want %r" % (what, got, want))


def trip_after_due(arm, pin):
    """Make the interlock `pin` open (its IRQ fires) right after each
    SoftArm.due() check of `arm`: a trip landing inside the fire path."""
    due = arm.due

    def due_then_trip(t, count):
        r = due(t, count)
        pin.drive(0)
        return r

    arm.due = due_then_trip


def short_opening(b, en, door, close_all):
    """An interlock open for less than one control step: the trip is latched
    (SR-4). close_all() closes every interlock; en, door are fake Pins."""
    close_all()
    b.inputs.read()  # the core has seen every interlock closed
    b.laser.enable(True)
    eq(en.value(), 1, "enabled with every interlock closed")
    door.drive(0)
    eq(en.value(), 0, "the IRQ dropped the enable")
    door.drive(1)  # closed again before the core looked
    b.laser.enable(True)
    eq(en.value(), 0, "enable refused while the trip waits for the core")
    eq(b.inputs.read() & 2, 0, "the core's next read sees the door open")
    eq(b.inputs.read() & 2, 2, "reported once: the read after sees it closed")
    b.laser.enable(True)
    eq(en.value(), 1, "enable allowed once the core has taken the trip")


def run(ns):
    failed = 0
    for name in sorted(ns):
        if name.startswith("test_"):
            try:
                ns[name]()
                print("PASS", name)
            except Exception as e:  # noqa: BLE001 - report every failure, then exit 1
                failed += 1
                print("FAIL", name, type(e).__name__, e)
    if failed:
        sys.exit(1)
