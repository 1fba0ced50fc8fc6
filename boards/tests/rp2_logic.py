"""rp2 board logic in the Unix port: pin map, PIO arithmetic and programs
(run in the fake PIO interpreter), encoder reads, arming, interlock trip."""
import time

import mpcheck
from mpcheck import check, eq

mpcheck.use("rp2")
import machine  # noqa: E402
import rp2  # noqa: E402
import contract  # noqa: E402
import hal  # noqa: E402
import board  # noqa: E402
import pins  # noqa: E402
from interlocks import INTERLOCKS, N_INTERLOCKS  # noqa: E402
import pio  # noqa: E402
import stdiolink  # noqa: E402

# The test process's stdin is not the host link: nothing is pending on it
# (a test that wants a pending byte sets its board's link.any, or its poll).
_STDIN_ANY = stdiolink.StdioLink.any
stdiolink.StdioLink.any = lambda self: False


def test_pins_used_once():
    eq(len(set(pins.ALL)), len(pins.ALL), "a GPIO is used twice")
    eq(pins.ENC_B, pins.ENC_A + 1, "PIO reads A and B as two consecutive pins")
    check(26 <= pins.PD_ADC <= 28, "photodiode must be on an ADC pin (GPIO26-28)")
    eq(len(pins.INPUTS), 7, "one pin per input bit")


def test_pulse_divider_is_integer():
    eq(pio.divider(pio.SYS_HZ, pio.PULSE_HZ), 25, "divider")
    eq(pio.divider(133_000_000, pio.PULSE_HZ), 0, "133 MHz has no integer divider for 5 MHz")


def pulse_high_cycles(word):
    prog = pio.pulse
    level = [0]
    high = [0]

    def write(v, n):
        level[0] = v & 1

    sim = rp2.Sim(prog, write_pins=write)
    sim.tx.append(word)
    for _ in range(word + 20):
        before = sim.cycles
        sim.step()
        if level[0]:
            high[0] += sim.cycles - before
    return high[0]


def test_pulse_width_exact_100_to_150_us():
    for width_us in range(100, 151):
        cycles = pulse_high_cycles(pio.width_word(width_us))
        eq(cycles, width_us * pio.PULSE_HZ // 1_000_000, "pulse of %d us" % width_us)


def quad_levels(count):
    return (0, 1, 3, 2)[count & 3]  # B<<1|A, A leads going up


def run_decoder(states, steps_per_state=20):
    prog = pio.quadrature
    cur = [0]
    sim = rp2.Sim(prog, read_pins=lambda n: cur[0])
    sim.x = pio.COUNT_ZERO
    for s in states:
        cur[0] = s
        for _ in range(steps_per_state):
            sim.step()
            sim.rx[:] = sim.rx[-1:]  # the board drains the FIFO
    return sim.rx[-1] - pio.COUNT_ZERO


def test_quadrature_program_fills_pio_memory():
    eq(len(pio.quadrature), 32, "table needs address 0: program must fill all 32 slots")


def test_quadrature_table_matches_up_down():
    prog = pio.quadrature
    for code in range(16):
        target = prog.code[code][1][0]
        want = {1: "up", -1: "down", 0: "same"}[pio.table_step(code)]
        eq(target, want, "table entry %d" % code)


def test_quadrature_counts_both_ways():
    forward = [quad_levels(c) for c in range(1, 41)]
    back = [quad_levels(c) for c in range(39, 24, -1)]
    eq(run_decoder(forward), 40, "40 steps up")
    eq(run_decoder(forward + back), 25, "40 up then 15 down")
    eq(run_decoder([quad_levels(-c) for c in range(1, 9)]), -8, "below zero")


def test_encoder_starts_at_zero_whatever_the_pins():
    """The board's set-up (its put and exec'd instructions), then the program,
    with the encoder resting at each A/B state: the count stays 0."""
    for ab in range(4):
        make()
        sm = rp2.StateMachine.made[0]
        sim = rp2.Sim(pio.quadrature, read_pins=lambda n: ab)  # noqa: B023 - run within this pass
        sim.tx = [v for kind, v in sm.log if kind == "put"]
        for instr in sm.execs:
            sim.exec(instr)
        for _ in range(40):
            sim.step()
            sim.rx[:] = sim.rx[-1:]
        eq(sim.rx[-1] - pio.COUNT_ZERO, 0, "count at rest with A/B = %d" % ab)


def test_fake_pio_shifts_left_by_default():
    """rp2.asm_pio's in_shiftdir and out_shiftdir default to SHIFT_LEFT."""

    @rp2.asm_pio()
    def prog():
        pull()  # noqa: F821 - PIO DSL names
        out(x, 4)  # noqa: F821

    sim = rp2.Sim(prog)
    sim.tx.append(0xA000_0005)
    sim.step()
    sim.step()
    eq(sim.x, 0xA, "out(x, 4) takes the top bits when shifting left")


def test_fake_hard_irq_and_masked_code_cannot_allocate():
    """As on the board: a hard IRQ handler runs with the heap locked; the fake
    also locks it with interrupts masked, and a mem32 read that would make a
    big int (>= 2**30) on a 32-bit port fails there."""
    got = [None]  # preallocated: the handler itself must not allocate to report

    def allocates(pin):
        try:
            got[0] = [pin.id]
        except MemoryError:
            got[0] = "locked"

    p = machine.Pin(27, machine.Pin.IN)  # a pin no board uses
    p.irq(allocates, machine.Pin.IRQ_RISING, hard=True)
    p.drive(1)
    eq(got, ["locked"], "allocation in a hard IRQ")
    machine.mem32[0x4005_800C] = 0x6AB7_3121
    state = machine.disable_irq()
    try:
        try:
            machine.mem32[0x4005_800C]
            big = False
        except MemoryError:
            big = True
    finally:
        machine.enable_irq(state)
    check(big, "a mem32 read >= 2**30 with interrupts masked")
    eq(machine.mem32[0x4005_800C], 0x6AB7_3121, "fine outside")
    machine.mem32[0x4005_800C] = 0


def test_fake_flash_write_masks_irqs_and_the_watchdog_bites():
    seen = []
    p = machine.Pin(28, machine.Pin.IN)
    p.irq(lambda pin: seen.append(machine.now_us()), machine.Pin.IRQ_RISING, hard=False)
    w = machine.WDT(timeout=100)
    t0 = machine.now_us()
    machine.flash_write(60_000, lambda: p.drive(1))
    eq(seen, [t0 + 60_000], "the IRQ waited for the end of the write")
    try:
        machine.flash_write(60_000)
        check(False, "120 ms unfed against a 100 ms watchdog")
    except machine.Reset:
        pass
    finally:
        machine.watchdog_off()
    w.feed()


def test_quadrature_ignores_double_change():
    eq(run_decoder([1, 3, 0, 3]), 2, "3 -> 0 and 0 -> 3 (both bits) count nothing")


def decoder_irqs(states, steps_per_state=20):
    """Run the decoder through `states`: (count, passes that set an IRQ flag).
    The flags are cleared after each step, as the port's handler acknowledges them."""
    cur = [0]
    sim = rp2.Sim(pio.quadrature, read_pins=lambda n: cur[0])
    sim.x = pio.COUNT_ZERO
    raised = 0
    for s in states:
        cur[0] = s
        for _ in range(steps_per_state):
            sim.step()
            if sim.irq_flags:
                eq(sim.irq_flags, 1, "only flag 0, the flag of SM0, the encoder's")
                raised += 1
                sim.irq_flags = 0
            sim.rx[:] = sim.rx[-1:]
    return sim.rx[-1] - pio.COUNT_ZERO, raised


def test_quadrature_raises_its_irq_once_per_count_change():
    """The count IRQ (SR-8): one flag per counted edge, none at rest and none
    for an invalid change (both bits at once)."""
    forward = [quad_levels(c) for c in range(1, 41)]
    back = [quad_levels(c) for c in range(39, 24, -1)]
    eq(decoder_irqs(forward), (40, 40), "40 steps up")
    eq(decoder_irqs(forward + back), (25, 55), "40 up then 15 down")
    eq(decoder_irqs([0, 0, 0]), (0, 0), "at rest")
    eq(decoder_irqs([1, 3, 0, 3]), (2, 2), "3 -> 0 and 0 -> 3 raise nothing")


def make():
    return board.make()


def test_contract():
    eq(contract.missing(make()), [], "HAL contract")


def test_encoder_count_takes_fresh_value():
    b = make()
    sm = rp2.StateMachine.made[0]
    sm.rx[:] = [pio.COUNT_ZERO + 1, pio.COUNT_ZERO + 2]
    sm.latest = pio.COUNT_ZERO - 7
    eq(b.encoder.count(), -7, "stale FIFO entries dropped, next push seen")


def close_interlocks():
    for p in pins.INPUTS[:N_INTERLOCKS]:
        machine.Pin(p).drive(1)


def test_arm_fires_when_count_reached_in_direction():
    b = make()
    close_interlocks()
    enc = rp2.StateMachine.made[0]
    pulse = rp2.StateMachine.made[4]
    b.laser.configure(120, 3000)
    b.laser.enable(True)
    now = b.ticks_us()
    b.laser.arm(now, 10, 1)
    enc.latest = pio.COUNT_ZERO + 9
    b.wait(now + 1000)
    check(b.laser.armed(), "fired before the count was reached")
    eq(pulse.tx, [], "nothing pushed")
    enc.latest = pio.COUNT_ZERO + 10
    b.wait(now + 100_000)
    check(not b.laser.armed(), "armed pulse did not fire at its count")
    eq(pulse.tx, [pio.width_word(120)], "one pulse of 120 us")
    rec = [0, 0, 0]
    check(b.laser.take_pulse(rec), "pulse recorded")
    eq(rec[1], 10, "recorded count")


def test_arm_waits_while_enable_low():
    b = make()
    pulse = rp2.StateMachine.made[4]
    pulse.tx[:] = []
    b.laser.off()
    b.laser.configure(100, 1000)
    now = b.ticks_us()
    b.laser.arm(now, 0, 0)
    b.wait(now + 500)
    check(b.laser.armed(), "stays armed")
    eq(pulse.tx, [], "no pulse with the enable line low")


def test_interlock_irq_drops_enable_first():
    b = make()
    close_interlocks()
    b.laser.enable(True)
    en = machine.Pin(pins.LASER_EN)
    eq(en.value(), 1, "enable on with every interlock closed")
    b.laser.arm(b.ticks_us(), 5, 1)
    door = machine.Pin(pins.DOOR)
    check(door.hard, "interlock IRQ must be hard")
    door.drive(0)
    eq(en.value(), 0, "door opening dropped the enable line")
    check(not b.laser.armed(), "door opening cancelled the armed pulse")
    b.laser.enable(True)
    eq(en.value(), 0, "enable refused with the door open")
    eq(b.inputs.read() & INTERLOCKS, INTERLOCKS & ~2, "door bit reads open")


def test_reboot_cause_survives_reset():
    b = make()
    try:
        b.reboot(hal.RESET_EXCEPTION)
        check(False, "reboot returned")
    except machine.Reset:
        pass
    eq(b.reset_cause(), hal.RESET_EXCEPTION, "cause after reboot")


def test_power_on_reset_cause():
    """The rp2 port defines only PWRON_RESET and WDT_RESET (no SOFT_RESET):
    a boot after power-on must not touch the others."""
    check(not hasattr(machine, "SOFT_RESET"), "the fake offers rp2's reset causes only")
    b = make()
    machine.reset_cause_value = machine.PWRON_RESET
    eq(b.reset_cause(), hal.RESET_POWER, "power-on boot")


_REASON = 0x40058008
_SCRATCH4 = 0x4005801C


def test_machine_reset_is_not_a_watchdog_bite():
    b = make()
    machine.reset_cause_value = machine.WDT_RESET  # the port resets through the watchdog
    try:
        machine.mem32[_REASON] = 1
        machine.mem32[_SCRATCH4] = 0  # watchdog_reboot(0, ...) writes 0 here
        eq(b.reset_cause(), hal.RESET_SOFT, "machine.reset() from the REPL")
        machine.mem32[_SCRATCH4] = 0x6AB73121  # watchdog_enable()'s marker: machine.WDT bit
        eq(b.reset_cause(), hal.RESET_WATCHDOG, "watchdog bite")
        eq(b.reset_cause(), hal.RESET_SOFT, "a soft reset after the bite is not a second bite")
        machine.mem32[_REASON] = 0
        machine.mem32[_SCRATCH4] = 0x6AB73121
        eq(b.reset_cause(), hal.RESET_SOFT, "REASON says no watchdog: no bite")
    finally:
        machine.reset_cause_value = machine.PWRON_RESET


def test_interlock_after_due_check_cannot_push_a_pulse():
    b = make()
    close_interlocks()
    pulse = rp2.StateMachine.made[4]
    b.laser.configure(120, 3000)
    b.laser.enable(True)
    now = b.ticks_us()
    b.laser.arm(now, 0, 0)
    mpcheck.trip_after_due(b.laser._arm, machine.Pin(pins.DOOR))
    b.wait(now + 100_000)
    eq(machine.Pin(pins.LASER_EN).value(), 0, "enable dropped")
    kinds = [e[0] for e in pulse.log]
    check("exec" in kinds, "off() ran its set-low")
    check("put" not in kinds[kinds.index("exec"):], "no pulse pushed after off(): %r" % kinds)


def test_wait_returns_when_the_encoder_turns():
    b = make()
    b.link.any = lambda: False  # stdin of the test process is not the link
    enc = rp2.StateMachine.made[0]
    enc.latest = pio.COUNT_ZERO + 5
    b.wait(b.ticks_us() + 1000)  # moving up
    enc.latest = pio.COUNT_ZERO + 4
    t0 = time.ticks_us()
    b.wait(t0 + 500_000)
    check(time.ticks_diff(time.ticks_us(), t0) < 100_000, "wait() returned at the turn, not the deadline")


def test_short_interlock_opening_is_latched():
    b = make()
    mpcheck.short_opening(b, machine.Pin(pins.LASER_EN), machine.Pin(pins.DOOR), close_interlocks)


# RP2040 on the Pico: W25Q16JV flash, datasheet maxima (typical 45 ms / 0.4 ms)
_ERASE_MAX_US = 400_000  # 4 KB sector erase
_PROG_MAX_US = 3_000  # 256-byte page program


def test_store_writes_with_enable_low_and_the_watchdog_above_the_worst_write():
    mpcheck.store_writes_under_the_watchdog("rp2", make(), machine.Pin(pins.LASER_EN), close_interlocks,
                                            _ERASE_MAX_US, _PROG_MAX_US, 256)


def test_trip_during_a_flash_write_stays_latched():
    mpcheck.trip_during_flash_write(make(), machine.Pin(pins.LASER_EN), machine.Pin(pins.DOOR),
                                    close_interlocks, 256)



def test_enable_low_at_start():
    mpcheck.starts_with_enable_low(make, machine.Pin(pins.LASER_EN))


def test_enable_refused_while_an_interlock_is_open():
    mpcheck.enable_refused_while_open(make(), machine.Pin(pins.LASER_EN), machine.Pin(pins.DOOR), close_interlocks)


def test_pulse_outside_the_board_limits_refused():
    mpcheck.pulse_outside_limits_refused(make())


def test_watchdog_bites_at_its_timeout():
    mpcheck.watchdog_bites_at_its_timeout(make())


def test_store_write_leaves_a_low_enable_low():
    mpcheck.store_write_keeps_enable_low(make(), machine.Pin(pins.LASER_EN), close_interlocks, 256)


def test_reboot_drops_enable_and_its_note_is_read_once():
    mpcheck.reboot_drops_enable_and_notes_once(make(), machine.Pin(pins.LASER_EN), close_interlocks)


def test_armed_pulse_waits_for_its_time_and_for_no_disarm():
    b = make()
    pulse = rp2.StateMachine.made[4]
    mpcheck.soft_arm_waits(b, machine.Pin(pins.LASER_EN), close_interlocks, lambda: len(pulse.tx))


def test_pulse_energy_read_after_the_pulse_then_discharged():
    b = make()
    mpcheck.pulse_energy_read_after_the_pulse(b, machine.Pin(pins.LASER_EN), close_interlocks, b.laser._adc,
                                              machine.Pin(pins.PD_RESET))


def count_irq_board(width_us=120):
    """A board enabled with every interlock closed and nothing on the link:
    (board, encoder SM, pulse SM). The tests raise the count IRQ with no
    wait() pass, as while the core works through a control step."""
    b = make()
    close_interlocks()
    b.inputs.read()
    b.link.any = lambda: False
    b.laser.configure(width_us, 3000)
    b.laser.enable(True)
    enc = rp2.StateMachine.made[0]
    pulse = rp2.StateMachine.made[4]
    pulse.tx[:] = []
    pulse.log[:] = []
    return b, enc, pulse


def test_count_irq_is_the_encoder_sms_and_soft():
    """The quadrature SM's IRQ has a handler; it is soft because it reads the
    link (SR-2), whose poll runs the USB stack, which a hard IRQ must not."""
    make()
    enc = rp2.StateMachine.made[0]
    check(enc.handler is not None, "no count IRQ handler")
    eq(enc.trigger, 1, "the SM's own flag")
    eq(enc.hard, False, "hard")


def test_armed_pulse_fires_from_the_count_irq_while_the_core_works():
    """SR-8: the pulse fires at its count from the count IRQ, with no wait()
    pass; the core sees it armed until it is in the pulse log, so it cannot
    arm the next one on counts that miss it (SR-6), and its light is not
    stray light meanwhile (SR-10)."""
    b, enc, pulse = count_irq_board()
    b.laser.arm(b.ticks_us(), 10, 1)
    enc.latest = pio.COUNT_ZERO + 9
    enc.raise_irq()
    eq(pulse.tx, [], "count 9 of 10: nothing pushed")
    enc.latest = pio.COUNT_ZERO + 10
    enc.raise_irq()
    eq(pulse.tx, [pio.width_word(120)], "one pulse of 120 us at count 10, no wait() pass")
    check(b.laser.armed(), "armed() until the pulse is recorded")
    b.laser._adc.raw = 1000 << 4  # the integrator holds the pulse
    try:
        check(not b.laser.stray_light(), "the fired pulse's light read as stray")
        enc.latest = pio.COUNT_ZERO + 11
        enc.raise_irq()
        eq(len(pulse.tx), 1, "one arm, one pulse")
        rec = [0, 0, 0]
        check(b.laser.take_pulse(rec), "recorded at the core's next take")
    finally:
        b.laser._adc.raw = 0
    eq(rec[1], 10, "recorded count")
    eq(rec[2], 1000 * b.laser._pd_uj_per_lsb, "energy of 1000 integrator steps")
    check(not b.laser.armed(), "disarmed once recorded")
    check(not b.laser.take_pulse(rec), "recorded once")
    b.laser._adc.raw = 1000 << 4
    try:
        check(b.laser.stray_light(), "light with no pulse fired is stray")
    finally:
        b.laser._adc.raw = 0


def test_count_irq_fires_nothing_while_a_byte_waits_on_the_link():
    """SR-2: a byte (maybe '!') waits: the IRQ leaves the pulse armed, for
    the core to read the byte first; with the link empty the next count fires."""
    b, enc, pulse = count_irq_board()
    b.link.any = lambda: True
    b.laser.arm(b.ticks_us(), 10, 1)
    enc.latest = pio.COUNT_ZERO + 10
    enc.raise_irq()
    eq(pulse.tx, [], "pushed while a byte waits")
    check(b.laser.armed(), "still armed")
    b.link.any = lambda: False
    enc.latest = pio.COUNT_ZERO + 11
    enc.raise_irq()
    eq(len(pulse.tx), 1, "fired once the link is empty")


class FakeStdin:
    """The link's stdin and its poll, holding `pending` bytes, behind the
    link's own any() and readinto(); on_read() runs as each byte has left,
    where the port may run a scheduled count IRQ. Use as a context manager."""

    def __init__(self, link, pending, on_read=None, late=0):
        self.link = link
        self.pending = pending
        self.on_read = on_read
        self.late = late  # polls that find nothing before the bytes arrive

    def __enter__(self):
        self.saved = self.link._in, self.link._poll
        self.link._in = self.link._poll = self
        stdiolink.StdioLink.any = _STDIN_ANY
        return self

    def __exit__(self, *exc):
        self.link._in, self.link._poll = self.saved
        stdiolink.StdioLink.any = lambda self: False

    def ipoll(self, timeout_ms):
        if self.late:
            self.late -= 1
            return []
        return [1] if self.pending else []

    def readinto(self, one):
        one[0] = self.pending.pop(0)
        if self.on_read:
            self.on_read()
        return 1


def test_count_irq_fires_nothing_in_a_step_that_read_a_byte():
    """SR-2: a '!' the core has read is acted on (laser.off()) before any
    pulse: the IRQ fires nothing from the core's read, even while the byte
    leaves the link, and even if it came in during the read, until its next
    wait(); wait() then fires a due pulse, and so does the IRQ again after it."""
    b, enc, pulse = count_irq_board()
    del b.link.any  # the link's own any(), over FakeStdin's poll
    b.laser.arm(b.ticks_us(), 10, 1)
    enc.latest = pio.COUNT_ZERO + 10
    for late in (0, 1):
        b.link.seen = False  # as at the step's start
        with FakeStdin(b.link, [0x21], on_read=lambda: enc.raise_irq(), late=late):
            got = b.link.readinto(bytearray(8))
            got += b.link.readinto(bytearray(8))  # late: the byte came in after the first read's poll
            enc.raise_irq()
        eq(got, 1, "the core read the '!'")
        eq(pulse.tx, [], "pushed before the core acted on the byte it read (late %d)" % late)
    b.link.any = lambda: False
    b.wait(b.ticks_us() + 1000)
    eq(len(pulse.tx), 1, "wait() fired the due pulse")
    b.laser.arm(b.ticks_us(), 20, 1)
    enc.latest = pio.COUNT_ZERO + 20
    enc.raise_irq()
    eq(len(pulse.tx), 2, "the IRQ fires again after wait()")


def test_count_irq_keeps_the_arm_conditions():
    """Direction, not_before and the enable line hold on the IRQ path as in
    wait() (SoftArm.due; SR-7, SR-8, SR-2)."""
    b, enc, pulse = count_irq_board()
    b.laser.arm(b.ticks_us(), 10, -1)
    for c in (11, 12):
        enc.latest = pio.COUNT_ZERO + c
        enc.raise_irq()
    eq(pulse.tx, [], "above the target moving down: not reached")
    enc.latest = pio.COUNT_ZERO + 10
    enc.raise_irq()
    eq(len(pulse.tx), 1, "reached going down")
    b.wait(b.ticks_us() + 1000)  # records it
    b.laser.arm(time.ticks_add(b.ticks_us(), 10_000_000), 20, 1)
    enc.latest = pio.COUNT_ZERO + 20
    enc.raise_irq()
    eq(len(pulse.tx), 1, "count reached 10 s before not_before")
    b.laser.disarm()
    b.laser.off()
    b.laser.arm(b.ticks_us(), 20, 1)
    enc.raise_irq()
    eq(len(pulse.tx), 1, "pushed with the enable line low")
    check(b.laser.armed(), "stays armed")


def test_interlock_after_the_irqs_due_check_cannot_push_a_pulse():
    """SR-3: an interlock trip landing inside the count IRQ's push decision
    (masked, as in wait()): off() comes after it and ends any pulse, or
    before it and nothing is pushed."""
    b, enc, pulse = count_irq_board()
    b.laser.arm(b.ticks_us(), 10, 1)
    enc.latest = pio.COUNT_ZERO + 10
    mpcheck.trip_after_due(b.laser._arm, machine.Pin(pins.DOOR))
    enc.raise_irq()
    eq(machine.Pin(pins.LASER_EN).value(), 0, "enable dropped")
    kinds = [e[0] for e in pulse.log]
    check("exec" in kinds, "off() ran its set-low")
    check("put" not in kinds[kinds.index("exec"):], "no pulse pushed after off(): %r" % kinds)


def test_count_irq_landing_inside_a_push_pushes_no_second_pulse():
    """The port runs a scheduled count IRQ between any two bytecodes, also
    inside wait()'s masked push (masking holds back only the PIO interrupt):
    one arm still makes one pulse (SR-6)."""
    b, enc, pulse = count_irq_board()
    arm = b.laser._arm
    due = arm.due
    ran = [0]

    def due_then_irq(t, count):
        r = due(t, count)
        if not ran[0]:
            ran[0] = 1
            enc.handler(enc)  # scheduled before the mask, run at this bytecode
        return r

    arm.due = due_then_irq
    b.laser.arm(b.ticks_us(), 0, 0)
    b.wait(b.ticks_us() + 1000)
    eq(ran[0], 1, "the IRQ ran inside the push")
    eq(len(pulse.tx), 1, "pulses pushed for one arm")


def test_count_irq_allocates_nothing():
    """The pulse path allocates nothing, on the IRQ path too: run here as the
    fake runs a hard IRQ, under the heap lock."""
    b, enc, pulse = count_irq_board()
    b.laser.arm(b.ticks_us(), 10, 1)
    enc.latest = pio.COUNT_ZERO + 10
    enc.hard = True
    try:
        enc.raise_irq()
    finally:
        enc.hard = False
    eq(len(pulse.tx), 1, "fired under the heap lock")


def test_irq_fired_pulse_read_after_its_width_then_discharged():
    """SR-10: a pulse the count IRQ fired is read once its width and the
    settle time have passed since its push (what is left of them when the
    core collects it), then discharged; it is logged at its push time.
    Virtual clock: board.py's and laserbase's time modules are replaced."""
    import board as board_mod
    import laserbase

    width_us = 150
    b, enc, pulse = count_irq_board(width_us)
    t = [5_000]  # a 30-bit tick, as on the board (the pulse log keeps 32 bits)
    log = []

    class Clock:
        ticks_diff = time.ticks_diff
        ticks_add = time.ticks_add

        def ticks_us():
            return t[0]

        def sleep_us(us):
            log.append(("sleep", us))
            t[0] = time.ticks_add(t[0], us)

    adc = b.laser._adc
    pd_reset = machine.Pin(pins.PD_RESET)
    adc.raw = 1000 << 4
    adc.read_u16 = lambda: log.append(("adc",)) or adc.raw
    pd_reset.value = lambda v=None: log.append(("pd_reset", v))
    board_mod.time = Clock
    laserbase.time = Clock
    try:
        t0 = t[0]
        b.laser.arm(t0, 10, 1)
        enc.latest = pio.COUNT_ZERO + 10
        enc.raise_irq()
        eq(len(pulse.tx), 1, "fired")
        t[0] = time.ticks_add(t0, 30)  # the core collects it 30 us later
        rec = [0, 0, 0]
        check(b.laser.take_pulse(rec), "recorded")
    finally:
        board_mod.time = time
        laserbase.time = time
        del adc.read_u16
        del pd_reset.value
        adc.raw = 0
    settle_us = 20  # board._PD_SETTLE_US
    eq(log, [("sleep", width_us + settle_us - 30), ("adc",), ("pd_reset", 1), ("sleep", b.laser._pd_reset_us),
             ("pd_reset", 0)], "wait for the rest of the pulse, read, discharge")
    eq(rec[0], t0, "logged at its push")
    eq(rec[2], 1000 * b.laser._pd_uj_per_lsb, "energy")


def test_power_setpoint_of_full_scale():
    b = make()
    b.laser.configure(100, 1000)
    eq(b.laser._power.duty_u16(), 1000 * 65535 // 3000, "1000 W of 3000 W full scale")


def fake_stdout(link, takes):
    """Stand in for the link's stdout: the bytes it took, and whether a
    zero-timeout poll says it takes one now (takes[0])."""
    sent = bytearray()

    def put(b):
        check(takes[0], "stdout written while its poll said full: that write would block")
        sent.extend(b)
        return len(b)

    refused = [0]

    def ipoll(timeout):
        if takes[0]:
            return (1,)
        refused[0] += 1
        check(refused[0] < 100_000, "stdout polled on and on while full: the caller spins")
        return ()

    link._put = put
    link._wipoll = ipoll
    return sent


def test_link_write_takes_what_fits_and_pump_sends_it_in_order():
    link = make().link
    takes = [True]
    sent = fake_stdout(link, takes)
    data = bytes(range(200))
    eq(link.write(data), 200, "a write that fits is taken whole")
    eq(link.write(memoryview(b"abcdefgh" * 16)[8:]), 56, "the ring takes what fits")
    eq(link.write(b"x"), 0, "a full ring takes nothing")
    eq(link.pump(150), 150, "sent while stdout takes bytes")
    eq(link.write(b"0123456789" * 20), 150, "the ring wraps")
    while link.pump(64):
        pass
    eq(bytes(sent), data + b"abcdefgh" * 7 + (b"0123456789" * 20)[:150], "in order, across the wrap")
    eq(link.tx_n, 0, "all sent")


def test_link_pump_never_writes_to_a_host_that_does_not_read():
    link = make().link
    takes = [False]
    sent = fake_stdout(link, takes)
    eq(link.write(b"line\n"), 5, "taken into the ring")
    eq(link.pump(8), 0, "nothing sent while stdout is full")
    takes[0] = True
    eq(link.pump(8), 5, "sent once the host reads")
    eq(bytes(sent), b"line\n", "the line")


def test_wait_sends_its_share_of_the_link_past_the_deadline():
    """A loop with no idle time still sends: a wait called at its deadline
    sends _TX_SHARE bytes (64), between its checks, and returns."""
    b = make()
    takes = [True]
    sent = fake_stdout(b.link, takes)
    b.link.write(bytes(100))
    b.wait(b.ticks_us())
    eq(len(sent), 64, "bytes sent past the deadline")
    eq(b.link.tx_n, 36, "the rest waits for the next wait")


def test_wait_returns_at_its_deadline_when_the_host_does_not_read():
    """SR-11: a host that keeps its port open but does not read stalls no wait."""
    b = make()
    takes = [False]
    sent = fake_stdout(b.link, takes)
    b.link.write(bytes(100))
    b.wait(b.ticks_us() + 200)  # returns: a stall would hang the test
    eq(len(sent), 0, "nothing written")
    eq(b.link.tx_n, 100, "the bytes stay queued")


def test_wait_returns_on_a_pending_byte_before_it_sends():
    """A pending byte (a stop) returns before any link output, as before any pulse (SR-2)."""
    b = make()
    takes = [True]
    sent = fake_stdout(b.link, takes)
    b.link.write(bytes(100))
    b.link.any = lambda: True
    b.wait(b.ticks_us() + 100_000)
    eq(len(sent), 0, "nothing sent ahead of the pending byte")


mpcheck.run(globals())
