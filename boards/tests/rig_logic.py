"""Bench rig logic in the Unix port: keyframe stepping, the quadrature words
(run through the fake PIO into the rp2 board's decoder), the width meter, and
the line protocol."""
import sys

import mpcheck
from mpcheck import check, eq

mpcheck.use("rig_pico")
sys.path.append(mpcheck.ROOT + "/boards/rp2")  # the device decoder (pio), for the end-to-end test
import machine  # noqa: E402
import rp2  # noqa: E402
import board  # noqa: E402
import pins  # noqa: E402
import rigpio  # noqa: E402
from interlocks import NAMES  # noqa: E402

KT = [0, 1000, 1600, 3000]
KX = [0, 40, 40, 25]


def test_pins_used_once():
    eq(len(set(pins.ALL)), len(pins.ALL), "a GPIO is used twice")
    eq(pins.QUAD_B, pins.QUAD_A + 1, "PIO out pins are consecutive")


def test_next_step_matches_position():
    for p_t0 in range(0, 3000, 37):
        p = board.position(KT, KX, p_t0)
        t, s = board.next_step(KT, KX, p_t0, p)
        want = -1
        for t2 in range(p_t0 + 1, 3001):
            if board.position(KT, KX, t2) != p:
                want = t2
                break
        eq(t, want, "next step after t=%d" % p_t0)
        if t >= 0:
            eq(board.position(KT, KX, t), p + s, "direction at t=%d" % t)


def test_gray_code_changes_one_bit():
    for c in range(-8, 8):
        d = rigpio.ab_of(c) ^ rigpio.ab_of(c + 1)
        check(d in (1, 2), "one bit changes from %d to %d" % (c, c + 1))


def _fill(rig, t_end):
    """Every word the rig queues for its path up to t_end, the loop back each
    time the FIFO is empty."""
    quad = rp2.StateMachine.made[0]
    rig.now = lambda: rig._t_out
    rig._t_out = 0
    words = []
    while rig._t_out < t_end:
        quad.tx[:] = []
        rig._refill(False)
        words += quad.tx
    return words


def _edges(words, t_end_us):
    """Run the words through quadrature_out: [(t_cycles, A/B)] for each change."""
    ab = [0]
    edges = []

    def write(v, n):
        ab[0] = v & 3

    gen = rp2.Sim(rigpio.quadrature_out, write_pins=write, fifo=8)
    gen.tx = list(words)
    while gen.cycles < t_end_us * rigpio.CYCLES_PER_US:
        before = ab[0]
        at = gen.cycles
        gen.step()
        if ab[0] != before:
            edges.append((at, ab[0]))
    return edges


def test_rig_words_drive_the_device_decoder():
    import pio as dev_pio

    rig = board.make()
    rig.kt, rig.kx = list(KT), list(KX)
    words = _fill(rig, 3200)
    ab = [0]

    def write(v, n):
        ab[0] = v & 3

    gen = rp2.Sim(rigpio.quadrature_out, write_pins=write, fifo=8)
    gen.tx = words
    dec = rp2.Sim(dev_pio.quadrature, read_pins=lambda n: ab[0])
    dec.x = dev_pio.COUNT_ZERO
    seen = {}
    while gen.cycles < 3000 * rigpio.CYCLES_PER_US:
        gen.step()
        for _ in range(2):  # the decoder runs faster than the 8 MHz generator
            dec.step()
            dec.rx[:] = dec.rx[-1:]
        if dec.rx:
            seen[gen.cycles // rigpio.CYCLES_PER_US] = dec.rx[-1] - dev_pio.COUNT_ZERO
    for t in (500, 1000, 1300, 2300, 2990):
        want = board.position(KT, KX, t)
        check(abs(seen[t] - want) <= 1, "decoded %d at %d us, path says %d" % (seen[t], t, want))
    eq(seen[2990], 25, "final position")


def test_each_edge_within_one_and_a_half_us_of_the_path():
    """Every count of the path, and no other, shows on A/B within 1.5 us of the
    (whole-us) time the path reaches it, over speeds whose period is and is not a whole
    number of PIO cycles, a turn and a still stretch."""
    kt, kx = [0, 7_000, 9_000, 30_000, 31_000], [0, 300, 300, 23, 23]
    rig = board.make()
    rig.kt, rig.kx = list(kt), list(kx)
    edges = _edges(_fill(rig, 31_000), 31_000)
    want = []
    p = 0
    for t in range(1, 31_000):
        q = board.position(kt, kx, t)
        if q != p:
            eq(abs(q - p), 1, "the path moves one count a us at most")
            want.append((t, rigpio.ab_of(q)))
            p = q
    eq([e[1] for e in edges], [w[1] for w in want], "every count in order, none missed or extra")
    for (c, _), (t, _) in zip(edges, want):
        check(abs(c - t * rigpio.CYCLES_PER_US) <= rigpio.CYCLES_PER_US * 3 // 2,
              "edge at %d cycles, the path steps at %d us" % (c, t))


def test_a_hold_jump_steps_there_at_once():
    """`hold <pos>` away from the hand: A/B step to pos right after, 5 us a count."""
    rig = board.make()
    rig.kt, rig.kx = [0, 1, 2], [0, 0, 9]  # the cut path of a `hold 9` at t=2
    edges = _edges(_fill(rig, 3_000), 3_000)
    eq([e[1] for e in edges], [rigpio.ab_of(c) for c in range(1, 10)], "counts 1..9, once each")
    check(edges[-1][0] <= 60 * rigpio.CYCLES_PER_US, "at 9 by 60 us: %d cycles" % edges[-1][0])
    rig = board.make()
    rig.kt, rig.kx = [0, 1, 2], [0, 0, 600]  # `hold 600` (30 mm): one run, the FIFO not refilled per count
    words = _fill(rig, 3_500)
    check(len(words) <= 9, "%d words for a 600-count jump" % len(words))
    eq(len(_edges(words, 3_500)), 600, "600 counts")


def test_a_long_fast_stroke_takes_few_words():
    """The Python loop works per run of counts, not per count: 2400 counts at
    10 us a count (80 PIO cycles, no drift) in a handful of words, and 1200
    counts at 833.33 us a count (60 mm/s) in far fewer words than counts."""
    rig = board.make()
    rig.kt, rig.kx = [0, 24_000], [0, 2_400]
    words = _fill(rig, 24_000)
    check(len(words) <= 3 * 12, "%d words for 2400 counts" % len(words))
    rig = board.make()
    rig.kt, rig.kx = [0, 1_000_000], [0, 1_200]
    words = _fill(rig, 1_000_000)
    check(len(words) <= 1_200 // 4, "%d words for 1200 counts at 60 mm/s" % len(words))


def test_a_still_hand_takes_few_words():
    """A still hand costs the loop little: a run of Python per _MAX_HOLD_US,
    not per 2 ms (25 runs to fill the 50 ms horizon)."""
    rig = board.make()
    rig.kt, rig.kx = [0, 1_000_000], [0, 0]
    words = _fill(rig, 200_000)
    check(len(words) <= 3 * 10, "%d words for a hand still 200 ms" % len(words))
    eq(_edges(words, 200_000), [], "A/B stay put")


def test_a_pass_queues_few_runs_when_the_pio_keeps_up():
    """The PIO taking every word as soon as it is put (the loop no faster than
    the encoder): one pass still returns after _RUNS_PER_PASS runs, so the
    loop reads commands and reports in between."""
    rig = board.make()
    quad = rp2.StateMachine.made[0]
    quad.tx_fifo = lambda: 0
    rig.now = lambda: 0
    rig.kt, rig.kx = [0, 81_063], [0, 1_000]  # 648.5 cycles a count: runs of 9 counts, 0.7 ms
    rig._refill(False)
    check(len(quad.tx) <= 3 * 3, "%d words in one pass" % len(quad.tx))


def test_width_meter_reads_pulse_width():
    for width_us in (100, 120, 150):
        level = [0]
        sim = rp2.Sim(rigpio.width_meter, read_pins=lambda n: level[0], jmp_pin=lambda: level[0])  # noqa: B023 - run within this pass
        for cycle in range(2 * (width_us + 20)):
            level[0] = 1 if 20 <= cycle < 20 + 2 * width_us else 0  # 2 cycles per us
            sim.step()
        check(sim.rx and abs(sim.rx[0] - width_us) <= 1, "width %d us read as %r" % (width_us, sim.rx))


def test_interlocks_open_at_power_up():
    board.make()
    for name in pins.OUTPUTS:
        eq(machine.Pin(name).value(), 0, "rig output GP%d low (open) at power-up" % name)


def test_fire_event_waits_for_its_width():
    rig = board.make()
    out = []
    rig.notify = out.append
    clock = [1_000]
    rig.now = lambda: clock[0]  # rig time by hand (the Unix port's ticks are not the Pico's)
    rig._rig_time = lambda ticks: 1_000  # every fire edge at t=1000
    width = rp2.StateMachine.made[4]
    rig._on_fire(None)  # the rising edge: the pulse has only started
    clock[0] = 1_050
    rig._report()
    eq(out, [], "held until the width meter has the width")
    width.rx.append(120)
    rig._report()
    eq(out, ["p 1000 0 0 120 0"], "reported with its own width")
    out[:] = []
    rig._on_fire(None)  # an edge the width meter never timed
    rig._report()
    eq(out, [], "held while a width may still come")
    clock[0] = 30_000
    rig._report()
    eq(out, ["p 1000 0 0 0 0"], "reported with width 0 after the wait")


def test_late_fire_event_keeps_its_position():
    """A fire event still waiting for its width when the loop has moved past
    the next keyframe: its position comes from the path at its own time."""
    rig = board.make()
    out = []
    rig.notify = out.append
    clock = [0]
    rig.now = lambda: clock[0]
    rig.kt, rig.kx = [0, 1000, 2000], [0, 40, 40]
    rig._rig_time = lambda ticks: 500  # the fire edge came at t=500, position 20
    rig._on_fire(None)
    clock[0] = 1_200  # the main loop is back after the keyframe at 1000
    rig._refill(False)
    rp2.StateMachine.made[4].rx.append(120)
    rig._report()
    eq(out, ["p 500 20 0 120 0"], "position at the pulse's own time")


def test_hold_keeps_the_path_behind_it():
    rig = board.make()
    clock = [2_000]
    rig.now = lambda: clock[0]
    rig.kt, rig.kx = [0, 4000], [0, 80]
    eq(rig.command(["hold", "7"]), "= 7", "hold")
    # The cut segment ends on an integer count at now-1: within one count.
    check(abs(board.position(rig.kt, rig.kx, 1_000) - 20) <= 1, "the path before the hold is kept")
    eq(board.position(rig.kt, rig.kx, 2_000), 7, "the hand stands at 7 from the hold on")
    clock[0] = 3_000
    eq(rig.command(["pos"]), "= 7", "and stays there")


def test_underrun_only_when_a_step_came_late():
    """The FIFO running dry is reported only if the hand was to move in the gap."""
    rig = board.make()
    out = []
    rig.notify = out.append
    clock = [0]
    rig.now = lambda: clock[0]
    rig.kt, rig.kx = [0, 1_000_000, 2_000_000], [0, 0, 400]  # still for 1 s (past the queue's horizon), then moving
    quad = rp2.StateMachine.made[0]
    rig._refill()
    quad.tx[:] = []  # the PIO took every word
    clock[0] = 500_000  # the loop was away 0.5 s while the hand stood still
    rig._refill()
    eq(out, [], "nothing was late: A/B stood where the hand was")
    quad.tx[:] = []
    clock[0] = 1_500_000  # away again while the hand moved: its steps came late
    rig._refill()
    eq(out, ["o 1500000 underrun=1"], "late steps are reported")


def test_a_loop_stall_before_a_motion_starts_loses_no_step():
    """The loop away 40 ms just as the hand starts to move (the footswitch
    press): the motion's first run was queued before, its first delay
    reaching the first step."""
    rig = board.make()
    out = []
    rig.notify = out.append
    clock = [0]
    rig.now = lambda: clock[0]
    rig.kt, rig.kx = [0, 30_000, 40_000], [0, 0, 40]  # still 30 ms, then 4 counts a ms
    rig._refill()
    words = list(rp2.StateMachine.made[0].tx)
    clock[0] = 40_000  # away 40 ms
    rig._refill()
    eq(out, [], "no underrun")
    edges = _edges(words, 40_000)
    check(len(edges) >= 30, "the queue made the motion's counts: %d" % len(edges))


def test_no_underrun_while_a_hold_jump_is_pending():
    """The loop away while the encoder has yet to make a `hold` jump (the path
    stands at the held count): nothing on the path came late."""
    rig = board.make()
    out = []
    rig.notify = out.append
    clock = [0]
    rig.now = lambda: clock[0]
    rig._refill()  # still runs queued up to the horizon
    clock[0] = 1_000
    eq(rig.command(["hold", "600"]), "= 600", "hold")
    rp2.StateMachine.made[0].tx[:] = []  # the PIO took every word
    clock[0] = 60_000  # the loop away (a stall around the footswitch press)
    rig._refill()
    eq(out, [], "no underrun: the path stood still")
    rp2.StateMachine.made[0].tx[:] = []
    rig.kt, rig.kx = [0, 100_000, 110_000], [600, 600, 640]  # moving after what the queue held (still runs)
    clock[0] = 130_000  # away again while the path moved
    rig._refill()
    eq(out, ["o 130000 underrun=1"], "late steps are still reported")


class _NoSleep:
    """time for the rig without the real sleep of `power`."""
    ticks_us = staticmethod(board.time.ticks_us)
    ticks_diff = staticmethod(board.time.ticks_diff)

    @staticmethod
    def sleep_ms(ms):
        pass


def test_power_cut_drives_no_line_into_the_unpowered_device():
    rig = board.make()
    rig.start()
    for name in NAMES:  # every input the device has (firmware/interlocks.py)
        rig.command(["in", name, "1"])
    quad = rp2.StateMachine.made[0]
    outs = [machine.Pin(p) for p in pins.OUTPUTS]
    at_cut = []

    class Relay:
        def value(self, v):
            if not v:
                at_cut.append(([p.value() for p in outs], quad.running, len(quad.tx), quad.log[-1][0]))

    rig._power = Relay()
    saved = board.time
    board.time = _NoSleep
    try:
        eq(rig.command(["power"]), "= ok", "power")
    finally:
        board.time = saved
    eq(at_cut, [([0] * 7, False, 0, "init")], "every line low, quadrature stopped and re-initialised (A/B low)")
    eq([p.value() for p in outs], [1] * 7, "the host's levels are back with the supply")
    check(quad.running and quad.tx, "the encoder schedule runs again")


def test_protocol():
    rig = board.make()
    eq(rig.command(["in", "door", "0"])[:2], "= ", "in answers the time")
    eq(machine.Pin(pins.DOOR).value(), 0, "door line driven low (open)")
    eq(rig.command(["in", "foot", "1"])[:2], "= ", "foot")
    eq(machine.Pin(pins.FOOT).value(), 1, "footswitch pressed")
    check(rig.command(["adv", "1000"]).startswith("? "), "adv refused on a real-time bench")
    check(rig.command(["pd", "gain", "50"]).startswith("? "), "pd refused")
    check(rig.command(["frob"]).startswith("? unknown"), "unknown command")
    check("clock=real" in rig.command(["info"]), "info says real time")
    t = rig.now()
    eq(rig.command(["kf", str(t + 10_000), "20"]), "= 2", "keyframe added")
    check(rig.command(["kf", str(t + 5_000), "20"]).startswith("? "), "keyframe time must increase")
    eq(rig.command(["hold", "7"]), "= 7", "hold")
    eq(rig.command(["pos"]), "= 7", "pos")


mpcheck.run(globals())
