# Pacing: distance grid, stillness, rate and average power, dwell, trigger
# points (SR-7, SR-8, SR-9), and no allocation in the pulse path.
import micropython

from controller import Controller
from fakes import FullBoard, MemStore, record
from pacer import Pacer
from program import parse_phase
from mp_test_program import LIM, POINT_PH, SCAN

LIMITS = {k: getattr(LIM, k) for k, _ in LIM.items()}


def run(profile, phase_text=SCAN, ms=3000, pacer=None):
    """Drive a pacer with a fake laser along profile(t_ms) -> counts.
    Returns the fired pulses as (t_us, pos)."""
    from fakes import FakeLaser

    ph, why = parse_phase(phase_text.split(), LIM)
    assert why is None, why
    p = pacer or Pacer(LIM, 20, 4)
    las = FakeLaser()
    las.enabled = True
    rec = record()
    p.start(ph, profile(0), True)
    out = []
    for t_ms in range(1, ms):
        t = t_ms * 1000
        pos = profile(t_ms)
        las.hardware(t, pos)
        while las.take_pulse(rec):
            p.fired(rec[0], rec[1])
            out.append((rec[0], rec[1]))
        p.elapse(1000)
        turned = p.track(pos)
        if turned:
            las.disarm()
        if not las.armed() and p.plan(t):
            las.arm(p.not_before_us, p.target_count, p.dir if ph.mode == 0 else 0)
    return out, p


def test_no_pulse_while_still():
    out, _ = run(lambda t: 500)
    assert out == []


def test_no_pulse_from_tremor_inside_the_deadband():
    out, _ = run(lambda t: 500 + (t // 7) % 3)  # +-1..2 counts forever
    assert out == []


def test_slow_scan_hits_the_grid_exactly():
    # 33 mm/s = 0.66 counts/ms, well below 3.3 mm x 29 Hz
    out, p = run(lambda t: t * 66 // 100)
    assert len(out) > 10
    gaps = [b[1] - a[1] for a, b in zip(out, out[1:])]
    assert all(65 <= g <= 67 for g in gaps), gaps
    assert p.under_counts == 0


def test_too_fast_clamps_rate_and_reports_underdose():
    # 300 mm/s = 6 counts/ms: three times what 3.3 mm at 29 Hz allows
    out, p = run(lambda t: t * 6)
    dts = [b[0] - a[0] for a, b in zip(out, out[1:])]
    assert min(dts) >= 34286
    gaps = [b[1] - a[1] for a, b in zip(out, out[1:])]
    assert min(gaps) >= 66  # never closer than the spacing
    assert p.under_counts > 0


def test_grid_points_passed_in_one_slow_loop_are_skipped():
    # A slow loop (a store write on flash takes tens of ms) with a fast hand:
    # the hand passed three grid points in one step; the next target is the
    # grid point ahead of it, never one behind (that would fire at once).
    ph, _ = parse_phase(SCAN.split(), LIM)
    p = Pacer(LIM, 20, 4)
    p.start(ph, 0, True)
    p.track(10)
    p.track(231)  # 3.5 spacings of 66 counts
    assert p.plan(0)
    assert p.target_count == 264 and p.skips == 3


def test_average_power_over_any_window():
    out, _ = run(lambda t: t * 6, ms=5000)
    times = [t for t, _ in out]
    for i, t0 in enumerate(times):
        n = sum(1 for t in times[i:] if t - t0 < 1_000_000)
        assert n * 360000 <= 10_500_000, (t0, n)


def test_reversal_counts_path():
    # 40 mm out and back at 33 mm/s: the return stroke doses too
    def sweep(t):
        x = t * 66 // 100
        return x if x <= 800 else 1600 - x

    out, p = run(sweep, ms=2400)
    back = [pos for _, pos in out if pos < 800 and _ > 1_300_000]
    assert back, out
    assert p.path_counts >= 1500


def test_dwell_limit_stops_scrubbing_one_place():
    # scrub 5 mm back and forth at 100 mm/s for 10 s: energy per cm is capped
    def scrub(t):
        x = (t * 2) % 200
        return 1000 + (x if x < 100 else 200 - x)

    out, p = run(scrub, ms=10000)
    assert out
    assert len(out) * 360 <= LIM.dwell_mj_per_cm_max  # every pulse lands within 1 cm
    assert p.skips > 0


def test_dwell_limit_counts_only_the_pulses_since_the_window_forgot():
    # 3000 W x 120 us = 360 mJ a pulse: 41 within 1 cm fit 15 J, 42 do not.
    ph, _ = parse_phase(SCAN.split(), LIM)
    p = Pacer(LIM, 20, 4)
    p.start(ph, 0, True)
    clock = [0]

    def fire(n, pos):
        for _ in range(n):
            clock[0] += 40_000
            p.elapse(40_000)
            p.fired(clock[0], pos)

    fire(401, 100_000)  # the whole ring, far away
    p.elapse(10_000_000)  # a quiet window: the ring is forgotten
    clock[0] += 10_000_000
    fire(40, 500)
    assert p._dwell_ok(clock[0], 500)
    fire(1, 500)
    assert not p._dwell_ok(clock[0], 500)
    assert p._dwell_ok(clock[0], 500 + 20 * 11)  # 11 mm away none of them counts


def test_trigger_point_paces_by_time_only():
    out, _ = run(lambda t: 700, phase_text=POINT_PH, ms=1000)
    assert len(out) == 10  # 10 Hz for 1 s, hand still
    dts = [b[0] - a[0] for a, b in zip(out, out[1:])]
    assert min(dts) >= 100000


def test_trigger_point_notices_motion():
    ph, _ = parse_phase(POINT_PH.split(), LIM)
    p = Pacer(LIM, 20, 4)
    p.start(ph, 100, True)
    p.track(105)
    assert not p.point_moved()  # 0.25 mm inside 0.5 mm
    p.track(111)
    assert p.point_moved()
    p.track(89)
    assert p.point_moved()  # either way
    p.start(ph, 95, False)  # resumed after a pause: the anchor stays
    assert p.point_offset() == -5


def emit_under_heap_lock(phase_text, hand, steps):
    """Run Controller.emit and on_pulse (the per-loop and per-pulse path)
    with the heap locked; returns the pulses fired."""
    b = FullBoard(LIMITS)
    b.store = store = HeapStore()
    c = Controller(b)
    ph, _ = parse_phase(phase_text.split(), LIM)
    c.program.add(ph, phase_text)
    assert c.program.close(1, LIM) is None
    assert c.session.load() and c.session.begin(c.program)
    begun = store.writes
    b.encoder.pos = hand(0)
    c._start_step()
    b.laser.enable(True)
    las, rec = b.laser, c.rec
    fired = 0
    micropython.heap_lock()
    store.locked = True
    try:
        for step in range(steps):
            b.t += 500
            b.encoder.pos = hand(step)
            las.hardware(b.t, b.encoder.pos)
            while las.take_pulse(rec):
                c.on_pulse(rec)
                fired += 1
            c.pacer.elapse(500)
            c.emit(b.t)
    finally:
        store.locked = False
        micropython.heap_unlock()
    assert c.state != 7  # no fault on the way
    assert store.writes - begun >= fired // 9  # the reservations were written on the way
    return fired


class HeapStore(MemStore):
    """The board's store: its own write may allocate (a file write does, on
    every port); the firmware's part of a store write may not."""

    locked = False  # the test holds the heap lock

    def write(self, slot, data):
        if not self.locked:
            return super().write(slot, data)
        micropython.heap_unlock()
        try:
            super().write(slot, data)
        finally:
            micropython.heap_lock()


def test_scan_pulse_path_does_not_allocate():
    assert emit_under_heap_lock(SCAN, lambda step: step, 20000) > 100  # 100 mm/s


def test_point_pulse_path_does_not_allocate():
    assert emit_under_heap_lock(POINT_PH, lambda step: 300, 10000) > 40  # still hand, 10 Hz


def test_pacing_across_the_tick_wrap():
    import ticks

    ph, _ = parse_phase(SCAN.split(), LIM)
    p = Pacer(LIM, 20, 4)
    p.start(ph, 0, True)
    p.track(10)
    t_fire = ticks.MASK - 1000  # a pulse just before the wrap
    p.fired(t_fire, 66)
    now = ticks.add(t_fire, 2000)  # 2 ms later, across the wrap
    p.elapse(2000)
    p.track(70)
    assert p.plan(now)
    assert ticks.diff(p.not_before_us, t_fire) == 34286  # one period after the pulse


def test_long_pause_forgets_the_history():
    ph, _ = parse_phase(SCAN.split(), LIM)
    p = Pacer(LIM, 20, 4)
    p.start(ph, 0, True)
    p.track(10)
    p.fired(1000, 66)
    for _ in range(700):  # 700 s of loops: longer than half the tick period
        p.elapse(1_000_000)
    now = 1000 + 700_000_000 & 0x3FFFFFFF
    p.track(200)
    assert p.plan(now) and p.not_before_us == now  # no stale "last pulse" holds it back



# -- the dwell check: a viper walk over the ring (pacer._near_within)

def reference_dwell_ok(p, now, target):
    """The dwell rule walked pulse by pulse in bytecode, as the pacer did
    before its walk moved to viper (on a 32-bit board, whose time.ticks_diff
    is ticks.diff): this pulse, plus every pulse within 5 mm of target in the
    last dwell window, within the dwell limit."""
    import ticks

    total_uj = p.pulse_uj
    i = p._dw_head
    for _ in range(p._dw_n):
        i = (i - 1) % p._dw_size
        j = 3 * i
        if ticks.diff(now, p._dwell[j]) >= p._dwell_window_us:
            break
        d = p._dwell[j + 1] - target
        if -p._half_cm_counts <= d <= p._half_cm_counts:
            total_uj += p._dwell[j + 2]
    return total_uj <= p._dwell_max_uj


def scan_pacer():
    ph, _ = parse_phase(SCAN.split(), LIM)
    p = Pacer(LIM, 20, 4)
    p.start(ph, 0, True)
    return p


def test_dwell_check_matches_the_pulse_by_pulse_rule_on_random_histories():
    # Clusters of pulses (some at negative counts, some far out) with gaps that
    # let pulses leave the window, energies that change between phases, the
    # clock across its wrap, the ring wrapping: every verdict as the rule's.
    import random
    import ticks

    random.seed(7)
    verdicts = [0, 0]
    for history in range(12):
        p = scan_pacer()
        t = ticks.MASK - random.randint(0, 30_000_000)  # the wrap comes within ~30 s
        centre = random.choice((0, -3000, 500_000_000, -500_000_000))
        pos = centre
        for _ in range(random.randint(30, 900)):
            gap = random.choice((25_000,) * 12 + (40_000, 300_000, 2_000_000))
            t = ticks.add(t, gap)
            p.elapse(gap)
            pos = centre + random.randint(-150, 150) if random.randint(0, 3) else pos + random.randint(-40, 40)
            p.pulse_uj = random.choice((300_000, 360_000, 400_000))
            p.fired(t, pos)
            for _ in range(2):
                now = ticks.add(t, random.choice((0, 1, 9_999_999, 10_000_000, random.randint(0, 12_000_000))))
                target = pos + random.randint(-220, 220)
                got = p._dwell_ok(now, target)
                assert got == reference_dwell_ok(p, now, target), (history, now, target)
                verdicts[got] += 1
    assert verdicts[0] > 500 and verdicts[1] > 500, verdicts  # both verdicts, often


def test_dwell_window_ends_exactly_across_the_tick_wrap():
    # 41 pulses x 360 mJ at count 500 just before the wrap, then pulses 11 mm
    # away every 40 ms (the ring is never forgotten). One dwell window after
    # the first pulse, across the wrap, it has left the window: 40 + 1 fit.
    import ticks

    p = scan_pacer()
    t0 = ticks.MASK - 2_000_000
    t = t0
    for k in range(41):
        t = ticks.add(t0, k * 40_000)
        p.fired(t, 500)
    while ticks.diff(t, t0) < 10_000_000 - 40_000:
        t = ticks.add(t, 40_000)
        p.elapse(40_000)
        p.fired(t, 500 + 20 * 11)
    end = ticks.add(t0, 10_000_000)
    assert ticks.diff(end, t) > 0 and end < t0  # after the last pulse, across the wrap
    assert not p._dwell_ok(ticks.add(end, -1), 500)  # 1 us earlier all 41 still count
    assert p._dwell_ok(end, 500)
    assert not p._dwell_ok(end, 500 + 20 * 11)  # the pulses 11 mm away still count there


def test_dwell_check_counts_pulses_at_negative_counts():
    p = scan_pacer()
    for k in range(41):
        p.fired(1000 + k * 40_000, -2000 + k % 3)
    now = 1000 + 41 * 40_000
    assert not p._dwell_ok(now, -1998 - 100)  # all 41 within 5 mm, plus this one: over
    assert p._dwell_ok(now, -1998 - 101)  # the 14 at -1998 are 5.05 mm away
    assert not p._dwell_ok(now, -2000 + 100)
    assert p._dwell_ok(now, -2000 + 101)


def test_dwell_check_adds_up_the_energy_not_each_pulse():
    # 30 pulses of 400 mJ and this one of 3.4 J: each alone far under 15 J,
    # together 15.4 J
    p = scan_pacer()
    for k in range(30):
        p.fired(1000 + k * 40_000, 700)
    p.pulse_uj = 3_400_000
    now = 1000 + 30 * 40_000
    for j in range(30):
        p._dwell[3 * j + 2] = 400_000
    p._dw_uj = 30 * 400_000
    assert not p._dwell_ok(now, 700)
    p.pulse_uj = 3_000_000  # exactly 15 J
    assert p._dwell_ok(now, 700)


def test_dwell_check_refuses_a_pulse_over_the_limit_alone():
    p = scan_pacer()
    p.pulse_uj = LIM.dwell_mj_per_cm_max * 1000 + 1
    assert not p._dwell_ok(0, 0)  # an empty ring, but the pulse itself is over


def test_pacer_refuses_limits_whose_energies_leave_30_bits():
    from limits import Limits

    for key, value in (("dwell_mj_per_cm_max", 1_073_742), ("power_w_max", 7_158_279)):
        lim = dict(LIMITS)
        lim[key] = value
        try:
            Pacer(Limits(lim), 20, 4)
        except ValueError as e:
            assert "uJ" in str(e), e
        else:
            raise AssertionError("accepted " + key)
    lim = dict(LIMITS)
    lim["dwell_mj_per_cm_max"] = 1_073_741  # 1,073,741,000 uJ < 2**30: fits
    Pacer(Limits(lim), 20, 4)
