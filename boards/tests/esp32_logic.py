"""esp32 board logic in the Unix port: pin map, RMT arithmetic, arming."""
import time

import mpcheck
from mpcheck import check, eq

mpcheck.use("esp32")
import machine  # noqa: E402
import contract  # noqa: E402
import hal  # noqa: E402
import board  # noqa: E402
import pins  # noqa: E402
from interlocks import N_INTERLOCKS  # noqa: E402
import stdiolink  # noqa: E402

# The test process's stdin is not the host link: nothing is pending on it
# (a test that wants a pending byte sets its board's link.any).
stdiolink.StdioLink.any = lambda self: False

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


def close_interlocks():
    for p in pins.INPUTS[:N_INTERLOCKS]:
        machine.Pin(p).drive(1)


def enabled(width_us):
    """A board with every interlock closed, configured and enabled."""
    b = board.make()
    for p in pins.INPUTS[:N_INTERLOCKS]:
        machine.Pin(p).drive(1)
    b.laser.configure(width_us, 2400)
    b.laser.enable(True)
    return b


def test_arm_fires_rmt_at_count():
    b = enabled(150)
    enc = b.encoder._pcnt
    enc.count = 0
    now = b.ticks_us()
    b.laser.arm(now, -3, -1)
    b.wait(now + 300)
    check(b.laser.armed(), "not yet: count 0 has not reached -3 going down")
    enc.count = -3
    b.wait(now + 100_000)
    check(not b.laser.armed(), "fired at -3")
    eq(b.laser._rmt.sent[1:], [((150,), True)], "one high pulse of 150 ticks after the warm-up")


def test_port_version_checked():
    for v in ((1, 24, 0), (1, 25, 1, "preview")):
        try:
            board.check_port(v)
            check(False, "%r accepted" % (v,))
        except RuntimeError as e:
            check("1.26" in str(e), "the error names the version needed: %s" % e)
    board.check_port((1, 26, 0))
    board.check_port((1, 29, 0, "preview"))


def test_clipped_photodiode_reading_is_never_a_plausible_pulse():
    """The ADC tops out near 3.1 V at 11 dB, below the integrator's 3.3 V: a
    clipped reading must fail the core's energy check, not pass as a full pulse."""
    b = enabled(150)
    lim = b.limits
    nominal_uj = lim["power_w_max"] * lim["width_us_max"]
    b.laser.configure(lim["width_us_max"], lim["power_w_max"])
    b.laser._adc.raw = 0xFFF0  # the ADC's top code: the integrator was above its range
    now = b.ticks_us()
    b.laser.arm(now, 0, 0)
    b.wait(now + 100_000)
    rec = [0, 0, 0]
    check(b.laser.take_pulse(rec), "pulse recorded")
    tol = b.settings["energy_tol_pct"]
    check(rec[2] > nominal_uj * (100 + tol) // 100,
          "clipped reading %d uJ passes as a %d uJ pulse" % (rec[2], nominal_uj))
    check(b.laser.stray_light(), "a clipped reading with no pulse is light")
    b.laser._adc.raw = 0
    check(not b.laser.stray_light(), "dark reads dark")


def test_rmt_resolution_by_version():
    pin = machine.Pin(pins.LASER_FIRE)
    new = board.make_rmt(pin, (1, 27, 0))
    eq((new.resolution_hz, new.clock_div), (1_000_000, None), "v1.27+: resolution_hz, no clock_div")
    old = board.make_rmt(pin, (1, 26, 0))
    eq((old.resolution_hz, old.clock_div), (None, 80), "v1.26: clock_div 80")


def test_warm_up_write_emits_nothing():
    b = board.make()
    eq(b.laser._rmt.sent, [((1,), False)], "one low-level write at make(), nothing after")
    eq(machine.Pin(pins.LASER_EN).value(), 0, "enable low")


def test_interlock_after_due_check_cannot_start_the_rmt():
    b = enabled(120)
    now = b.ticks_us()
    b.laser.arm(now, 0, 0)
    mpcheck.trip_after_due(b.laser._arm, machine.Pin(pins.DOOR))
    b.wait(now + 100_000)
    eq(b.laser._rmt.sent[1:], [], "no pulse once the handler dropped the enable")


def test_wait_returns_when_the_encoder_turns():
    b = board.make()
    b.link.any = lambda: False  # stdin of the test process is not the link
    enc = b.encoder._pcnt
    enc.count = 5
    b.wait(b.ticks_us() + 1000)  # moving up
    enc.count = 4
    t0 = time.ticks_us()
    b.wait(t0 + 500_000)
    check(time.ticks_diff(time.ticks_us(), t0) < 100_000, "wait() returned at the turn, not the deadline")


def test_reset_causes():
    b = board.make()
    try:
        for cause, want in ((machine.PWRON_RESET, hal.RESET_POWER), (machine.WDT_RESET, hal.RESET_WATCHDOG),
                            (machine.SOFT_RESET, hal.RESET_SOFT), (machine.HARD_RESET, hal.RESET_EXCEPTION)):
            machine.reset_cause_value = cause
            eq(b.reset_cause(), want, "machine cause %d" % cause)
    finally:
        machine.reset_cause_value = machine.PWRON_RESET
    try:
        b.reboot(hal.RESET_EXCEPTION)
    except machine.Reset:
        pass
    machine.reset_cause_value = machine.HARD_RESET  # reboot() resets through machine.reset()
    try:
        eq(b.reset_cause(), hal.RESET_EXCEPTION, "the note kept by reboot()")
    finally:
        machine.reset_cause_value = machine.PWRON_RESET


def test_interlock_irq_refuses_hard():
    """The ESP32 port's Pin.irq() has no `hard` argument: the fake rejects it too."""
    p = machine.Pin(pins.DOOR, machine.Pin.IN)
    try:
        p.irq(lambda pin: None, machine.Pin.IRQ_FALLING, hard=True)
        check(False, "hard= accepted")
    except TypeError:
        pass


def test_contract():
    eq(contract.missing(board.make()), [], "HAL contract")


def test_short_interlock_opening_is_latched():
    b = board.make()
    mpcheck.short_opening(b, machine.Pin(pins.LASER_EN), machine.Pin(pins.DOOR), close_interlocks)


# ESP32-S3 modules' SPI flash (W25Q64/GD25Q64 class), datasheet maxima
_ERASE_MAX_US = 400_000  # 4 KB sector erase
_PROG_MAX_US = 3_000  # page program


def test_store_writes_with_enable_low_and_the_watchdog_above_the_worst_write():
    mpcheck.store_writes_under_the_watchdog("esp32", board.make(), machine.Pin(pins.LASER_EN), close_interlocks,
                                            _ERASE_MAX_US, _PROG_MAX_US, 32)


def test_trip_during_a_flash_write_stays_latched():
    mpcheck.trip_during_flash_write(board.make(), machine.Pin(pins.LASER_EN), machine.Pin(pins.DOOR),
                                    close_interlocks, 32)



def test_enable_low_at_start():
    mpcheck.starts_with_enable_low(board.make, machine.Pin(pins.LASER_EN))


def test_enable_refused_while_an_interlock_is_open():
    mpcheck.enable_refused_while_open(board.make(), machine.Pin(pins.LASER_EN), machine.Pin(pins.DOOR),
                                      close_interlocks)


def test_pulse_outside_the_board_limits_refused():
    mpcheck.pulse_outside_limits_refused(board.make())


def test_watchdog_bites_at_its_timeout():
    mpcheck.watchdog_bites_at_its_timeout(board.make())


def test_store_write_leaves_a_low_enable_low():
    mpcheck.store_write_keeps_enable_low(board.make(), machine.Pin(pins.LASER_EN), close_interlocks, 32)


def test_reboot_drops_enable_and_its_note_is_read_once():
    mpcheck.reboot_drops_enable_and_notes_once(board.make(), machine.Pin(pins.LASER_EN), close_interlocks)


def test_armed_pulse_waits_for_its_time_and_for_no_disarm():
    b = board.make()
    mpcheck.soft_arm_waits(b, machine.Pin(pins.LASER_EN), close_interlocks, lambda: len(b.laser._rmt.sent))


def test_pulse_energy_read_after_the_pulse_then_discharged():
    b = board.make()
    mpcheck.pulse_energy_read_after_the_pulse(b, machine.Pin(pins.LASER_EN), close_interlocks, b.laser._adc,
                                              machine.Pin(pins.PD_RESET))


mpcheck.run(globals())
