"""stm32 board logic in the Unix port: pin map, timer arithmetic, the 16-bit
encoder unwrap, and the register writes for break, one-pulse and compare.
The races are staged with the fake's write hooks (machine.mem32.hooks): an
"interrupt" lands right after a chosen register write."""
import time

import mpcheck
from mpcheck import check, eq

mpcheck.use("stm32")
import machine  # noqa: E402
import pyb  # noqa: E402
import contract  # noqa: E402
import hal  # noqa: E402
import board  # noqa: E402
import pins  # noqa: E402
from interlocks import N_INTERLOCKS  # noqa: E402
import timers as T  # noqa: E402
import backupstore as B  # noqa: E402

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
    for p in pins.INPUTS[:N_INTERLOCKS]:
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


def armed_at(b, base, offset):
    """Enable, arm a count pulse at base+offset going up, run one wait()."""
    b.laser.configure(100, 1000)
    b.laser.enable(True)
    mem[T.TIM8 + T.CR1] = T.CR1_OPM
    mem[T.TIM8 + T.SR] = 0
    now = b.ticks_us()
    b.laser.arm(now, base + offset, 1)
    b.wait(now + 200)
    return now


def test_interlock_during_compare_setup_leaves_nothing_live():
    b = board.make()
    close_interlocks()
    base = b.encoder.count()
    door = machine.Pin(pins.DOOR)
    mem.hooks[T.TIM4 + T.CCR3] = lambda v: door.drive(0)  # the IRQ lands mid set-up
    try:
        armed_at(b, base, 40)
    finally:
        mem.hooks.clear()
    check(not b.laser.armed(), "the trip cancelled the pulse")
    eq(machine.Pin(pins.LASER_EN).value(), 0, "enable low after the trip")
    door.drive(1)
    b.inputs.read()  # the core takes the latched trip before it enables again
    b.laser.enable(True)
    check(mem[T.TIM8 + T.BDTR] & T.BDTR_MOE, "enabled again")
    eq(mem[T.TIM8 + T.SMCR], 0, "no TIM8 trigger live after enable(True)")
    check(mem[T.TIM4 + T.CCMR2] & T.CCMR2_OC3M_MASK != T.OC3M_ON_MATCH, "no compare live after enable(True)")


def test_first_pulse_compare_not_preloaded():
    mem[T.TIM8 + T.CCMR1] = 0x0070 | T.CCMR1_OC1PE  # as pyb's PWM set-up leaves it
    egr = []
    mem.hooks[T.TIM8 + T.EGR] = egr.append
    try:
        board.make()
    finally:
        mem.hooks.clear()
    eq(mem[T.TIM8 + T.CCMR1], 0x0070, "OC1PE cleared, PWM mode kept")
    check(T.EGR_UG in egr, "UG loads the shadow registers")
    eq(mem[T.TIM8 + T.SR] & T.SR_UIF, 0, "the UIF that UG raised is cleared")


def test_break_releases_line_low_not_idle_high():
    mem[T.TIM8 + T.CR2] = T.CR2_OIS1 | T.CR2_OIS1N | 0x0001  # pyb sets OIS1
    board.make()
    eq(mem[T.TIM8 + T.CR2], 0x0001, "OIS1/OIS1N cleared, other bits kept")


def test_stray_light_not_judged_on_uncollected_pulse():
    b = board.make()
    close_interlocks()
    now = armed_at(b, b.encoder.count(), 40)
    b.laser._adc.raw = 1000  # far above _STRAY_UJ
    mem[T.TIM8 + T.CR1] = T.CR1_OPM | T.CR1_CEN  # the compare fired while the core is in step()
    check(not b.laser.stray_light(), "a running pulse is not stray light")
    mem[T.TIM8 + T.CR1] = T.CR1_OPM
    mem[T.TIM8 + T.SR] = T.SR_UIF  # ended, not yet collected
    check(not b.laser.stray_light(), "an uncollected pulse is not stray light")
    b.wait(now + 1000)
    check(not b.laser.armed(), "wait() collected the pulse")
    check(b.laser.stray_light(), "with nothing armed the same reading is stray light")
    b.laser._adc.raw = 0


def at_raw(raw):
    """A board with every interlock closed and TIM4 at `raw`: (board, TIM4, count)."""
    b = board.make()
    close_interlocks()
    tim4 = pyb.Timer.made[4]
    tim4.counter(raw)
    return b, tim4, b.encoder.count()


def test_compare_target_from_the_raw_that_gave_the_count():
    b, tim4, base = at_raw(500)
    tim4.script = [500, 501, 502]  # an edge between any two reads
    armed_at(b, base, 40)
    eq(mem[T.TIM4 + T.CCR3], 540, "raw 500 is count base: the target is raw 540")


def test_count_passed_during_setup_fires_by_software():
    b, tim4, base = at_raw(1000)

    def hand_passes(v):
        if v & T.CCMR2_OC3M_MASK == T.OC3M_ON_MATCH:
            tim4.counter(1041)  # passed the target before the compare was live
            mem[T.TIM4 + T.SR] |= 0x0008  # CC3IF: set by the match even while forced inactive

    mem.hooks[T.TIM4 + T.CCMR2] = hand_passes
    try:
        armed_at(b, base, 40)
    finally:
        mem.hooks.clear()
    check(mem[T.TIM8 + T.CR1] & T.CR1_CEN, "no trigger came: the pulse is started by software")
    eq(mem[T.TIM8 + T.SMCR], 0, "trigger off before the software start")


def test_encoder_pins_pulled_up():
    board.make()
    for p in (pins.ENC_A, pins.ENC_B):
        eq(machine.Pin(p).pull, pyb.Pin.PULL_UP, "pull-up on %s after channel()" % p)


def test_register_addresses_precomputed():
    for name in ("TIM8_CR1", "TIM8_CR2", "TIM8_SMCR", "TIM8_SR", "TIM8_EGR", "TIM8_CCMR1", "TIM8_CNT", "TIM8_ARR",
                 "TIM8_CCR1", "TIM8_BDTR", "TIM4_CR2", "TIM4_CCMR1", "TIM4_CCMR2", "TIM4_CCR3"):
        base, reg = name.split("_")
        eq(getattr(T, name), getattr(T, base) + getattr(T, reg), name)


def test_encoder_input_filter_set():
    mem[T.TIM4 + T.CCMR1] = 0x0101  # CC1S = CC2S = 01, as pyb's ENC_AB set-up leaves it
    board.make()
    eq(mem[T.TIM4 + T.CCMR1], 0xF1F1, "IC1F = IC2F = 1111 (3 us at 84 MHz), input mapping kept")


def test_power_setpoint_in_timer_ticks():
    b = board.make()
    b.laser.configure(100, 1000)
    period = pyb.Timer.made[2].period()
    eq(b.laser._power.pulse_width(), 1000 * (period + 1) // 3000, "1000 W of 3000 W full scale")


def test_wait_returns_when_the_encoder_turns():
    b = board.make()
    tim4 = pyb.Timer.made[4]
    raw = tim4.counter()
    tim4.counter(raw + 5)
    b.wait(b.ticks_us() + 1000)  # moving up
    tim4.counter(raw + 4)
    t0 = time.ticks_us()
    b.wait(t0 + 500_000)
    check(time.ticks_diff(time.ticks_us(), t0) < 100_000, "wait() returned at the turn, not the deadline")


def test_store_in_backup_sram_not_flash():
    """No flash erase during a session (a 16-64 KB sector stalls the CPU for
    hundreds of ms, beyond the 200 ms watchdog): the store is the backup SRAM."""
    b = board.make()
    eq(mem[0x4002_3830] & B.BKPSRAMEN, B.BKPSRAMEN, "backup SRAM clock on")
    eq(mem[B.PWR_CSR] & B.BRE, B.BRE, "backup regulator on: kept on VBAT")
    check(mem[0x4000_7000] & B.DBP, "backup domain writable")
    block = bytes(range(100))
    b.store.write(1, block)
    eq(b.store.read(1), block + b"\xff" * 28, "slot 1 read back, padded to the block")
    eq(mem[B.BKPSRAM + 128], 0x03020100, "slot 1 is the second block of the backup SRAM")
    b.store.write(0, b"\x01")
    eq(b.store.read(1), block + b"\xff" * 28, "writing slot 0 leaves slot 1")
    eq(machine.now_us(), 0, "no flash write: no time with interrupts masked")


def test_store_write_with_enable_low():
    b = board.make()
    close_interlocks()
    b.inputs.read()
    b.laser.enable(True)
    en = machine.Pin(pins.LASER_EN)
    levels = []
    mem.hooks[B.BKPSRAM] = lambda v: levels.append((en.value(), mem[T.TIM8 + T.BDTR] & T.BDTR_MOE))
    try:
        b.store.write(0, b"abc")
    finally:
        mem.hooks.clear()
    eq(levels, [(0, 0)], "LASER_EN low and MOE clear while the block is written")
    eq(en.value(), 1, "enabled again after the write")


def test_backup_regulator_must_come_up():
    mem[B.PWR_CSR] = 0
    try:
        board.make()
        check(False, "made without the backup regulator")
    except RuntimeError as e:
        check("backup regulator" in str(e), str(e))
    finally:
        mem[B.PWR_CSR] = B.BRR


def test_contract_and_reboot_cause():
    b = board.make()
    eq(contract.missing(b), [], "HAL contract")
    try:
        b.reboot(hal.RESET_EXCEPTION)
    except machine.Reset:
        pass
    eq(b.reset_cause(), hal.RESET_EXCEPTION, "cause kept in the backup register")


def test_short_interlock_opening_is_latched():
    b = board.make()
    mpcheck.short_opening(b, machine.Pin(pins.LASER_EN), machine.Pin(pins.DOOR), close_interlocks)



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
    mpcheck.store_write_keeps_enable_low(board.make(), machine.Pin(pins.LASER_EN), close_interlocks)


def test_reboot_drops_enable_and_its_note_is_read_once():
    mpcheck.reboot_drops_enable_and_notes_once(board.make(), machine.Pin(pins.LASER_EN), close_interlocks)


def test_no_pulse_started_with_enable_low():
    b = board.make()
    close_interlocks()
    b.inputs.read()
    b.laser.configure(100, 1000)
    b.laser.enable(False)
    mem[T.TIM8 + T.CR1] = T.CR1_OPM
    now = b.ticks_us()
    b.laser.arm(now, 0, 0)
    b.wait(now + 200)
    eq(mem[T.TIM8 + T.CR1] & T.CR1_CEN, 0, "TIM8 not started with LASER_EN low")
    check(b.laser.armed(), "the pulse stays armed")


mpcheck.run(globals())
