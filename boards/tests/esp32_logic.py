"""esp32 board logic in the Unix port: pin map, RMT arithmetic, arming."""
import mpcheck
from mpcheck import check, eq

mpcheck.use("esp32")
import machine  # noqa: E402
import hal  # noqa: E402
import board  # noqa: E402
import pins  # noqa: E402

_STRAPPING = (0, 3, 45, 46)
_RESERVED = (19, 20) + tuple(range(26, 38))  # USB, flash and octal PSRAM


def test_pins_used_once_and_allowed():
    eq(len(set(pins.ALL)), len(pins.ALL), "a GPIO is used twice")
    for p in pins.ALL:
        check(p not in _STRAPPING and p not in _RESERVED, "GPIO%d is strapping/USB/flash" % p)
    check(1 <= pins.PD_ADC <= 10, "photodiode must be on ADC1 (GPIO1-10)")


def test_rmt_ticks_exact():
    for width_us in range(100, 151):
        eq(board.rmt_ticks(width_us, 1_000_000), width_us, "RMT ticks for %d us" % width_us)


def test_interlock_irqs_are_soft():
    board.make()
    check(not machine.Pin(pins.DOOR).hard, "ESP32 pin IRQs are never hard: do not claim one")


def test_arm_fires_rmt_at_count():
    b = board.make()
    for p in pins.INPUTS[:6]:
        machine.Pin(p).drive(1)
    b.laser.configure(150, 2400)
    b.laser.enable(True)
    enc = b.encoder._pcnt
    enc.count = 0
    now = b.ticks_us()
    b.laser.arm(now, -3, -1)
    b.wait(now + 300)
    check(b.laser.armed(), "not yet: count 0 has not reached -3 going down")
    enc.count = -3
    b.wait(now + 100_000)
    check(not b.laser.armed(), "fired at -3")
    eq(b.laser._rmt.sent, [((150,), True)], "one high pulse of 150 ticks")


def test_contract():
    eq(hal.missing(board.make()), [], "HAL contract")


mpcheck.run(globals())
