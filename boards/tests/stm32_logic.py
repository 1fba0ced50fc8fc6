"""stm32 board logic in the Unix port: pin map, timer arithmetic, the 16-bit
encoder unwrap, and the register writes for break, one-pulse and compare."""
import mpcheck
from mpcheck import check, eq

mpcheck.use("stm32")
import machine  # noqa: E402
import pyb  # noqa: E402
import hal  # noqa: E402
import board  # noqa: E402
import pins  # noqa: E402
import timers as T  # noqa: E402

mem = machine.mem32


def test_pins_used_once():
    eq(len(set(pins.ALL)), len(pins.ALL), "a pin is used twice")
    eq((pins.LASER_FIRE, pins.LASER_BRK), ("Y1", "X7"), "TIM8_CH1 and TIM8_BKIN are fixed pins")


def test_pulse_arr_exact_100_to_150_us():
    for width_us in range(100, 151):
        arr = T.pulse_arr(width_us, T.TIMER_HZ)
        eq(arr - T.DELAY_TICKS + 1, width_us * 168, "active ticks for %d us" % width_us)
        check(arr <= 0xFFFF, "ARR fits 16 bits at %d us" % width_us)


def test_step16_wraps():
    eq(T.step16(0xFFFE, 0x0003), 5, "up through the wrap")
    eq(T.step16(0x0003, 0xFFFE), -5, "down through the wrap")
    eq(T.step16(100, 100), 0, "still")
    eq(T.step16(0, 0x7FFF), 0x7FFF, "largest step up")


def test_encoder_position_continuous_over_many_wraps():
    b = board.make()
    tim = pyb.Timer.made[4]
    pos = 0
    for step in (30000, 30000, 30000, -20000, -30000, -30000, -30000, -25000, 7):
        pos += step
        tim.counter(pos & 0xFFFF)
        eq(b.encoder.count(), pos, "position after a step of %d" % step)


def test_off_clears_moe_and_trigger():
    b = board.make()
    mem[T.TIM8 + T.BDTR] = T.BDTR_MOE
    mem[T.TIM8 + T.SMCR] = T.SMCR_TRIGGER_ITR2
    b.laser.off()
    eq(mem[T.TIM8 + T.BDTR] & T.BDTR_MOE, 0, "MOE cleared")
    eq(mem[T.TIM8 + T.SMCR], 0, "trigger off")
    eq(machine.Pin(pins.LASER_EN).value(), 0, "enable low")


def close_interlocks():
    for p in pins.INPUTS[:6]:
        machine.Pin(p).drive(1)


def test_break_and_one_pulse_configured():
    board.make()
    t8 = pyb.Timer.made[8]
    eq(t8.kw.get("brk"), pyb.Timer.BRK_LOW, "break input active low")
    eq(t8.kw.get("prescaler"), 0, "prescaler 0: 168 ticks per us")
    eq(mem[T.TIM8 + T.CR1], T.CR1_OPM, "one-pulse mode, counter stopped")
    eq(mem[T.TIM8 + T.CCR1], T.DELAY_TICKS, "compare at the start delay")


def test_time_only_pulse_started_by_wait():
    b = board.make()
    close_interlocks()
    b.laser.configure(120, 3000)
    eq(mem[T.TIM8 + T.ARR], T.pulse_arr(120, T.TIMER_HZ), "ARR for 120 us")
    b.laser.enable(True)
    check(mem[T.TIM8 + T.BDTR] & T.BDTR_MOE, "MOE set by enable")
    now = b.ticks_us()
    b.laser.arm(now, 0, 0)
    b.wait(now + 200)
    eq(mem[T.TIM8 + T.CR1], T.CR1_OPM | T.CR1_CEN, "counter started")


def test_count_compare_handed_to_tim4():
    b = board.make()
    close_interlocks()
    tim4 = pyb.Timer.made[4]
    tim4.counter(0xFFF0)
    b.encoder.count()
    base = b.encoder.count()
    b.laser.configure(100, 1000)
    b.laser.enable(True)
    mem[T.TIM8 + T.CR1] = T.CR1_OPM
    now = b.ticks_us()
    b.laser.arm(now, base + 40, 1)
    b.wait(now + 200)
    eq(mem[T.TIM4 + T.CCR3], (0xFFF0 + 40) & 0xFFFF, "compare value wraps like the counter")
    eq(mem[T.TIM8 + T.SMCR], T.SMCR_TRIGGER_ITR2, "TIM8 waits for TIM4's trigger")
    eq(mem[T.TIM4 + T.CCMR2] & T.CCMR2_OC3M_MASK, T.OC3M_ON_MATCH, "active on match")
    eq(mem[T.TIM8 + T.CR1] & T.CR1_CEN, 0, "not started by software")


def test_contract_and_reboot_cause():
    b = board.make()
    eq(hal.missing(b), [], "HAL contract")
    try:
        b.reboot(hal.RESET_EXCEPTION)
    except machine.Reset:
        pass
    eq(b.reset_cause(), hal.RESET_EXCEPTION, "cause kept in the backup register")


mpcheck.run(globals())
