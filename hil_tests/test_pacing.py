"""Encoder-paced scanning and trigger points on the simulated board, checked
against the hand motion the rig played (SR-7, SR-8, SR-9)."""
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from handpiece.motion import Motion
from handpiece.pytest_plugin import target_settings
from handpiece.strategy import TEST_SCAN, Station

SPACING_COUNTS = 66  # 3.3 mm x 20 counts/mm
DEADBAND = 4  # counts the hand must come back before a turn is believed
LOOP_MS = 2  # the simulated board's control period
PULSE_J = 0.36
MIN_PERIOD_US = 34286  # 0.36 J at 10.5 W average

POINTS = {
    "program": {"name": "test points"},
    "phase": [{"name": "points", "mode": "point", "width_us": 120, "power_w": 3000, "rate_hz": 10,
               "energy_j": 62.5, "points": 2, "tol_mm": 0.5}],
}


def scan(station, rig, motion, run_ms):
    """Emit the test scan program while the hand plays `motion`; returns the
    board time at which the motion started."""
    station.ready()
    t0 = station.press_and_move(motion)
    station.advance(run_ms)
    return t0


def encoder_path(keyframes, pulse):
    """Counts of path travelled when `pulse` fired: whole strokes between the
    keyframes before it, then the part of the current stroke the encoder read."""
    total = 0
    for (_, xa), (tb, xb) in zip(keyframes, keyframes[1:]):
        if tb >= pulse.t_us:
            return total + abs(pulse.pos - xa)
        total += abs(xb - xa)
    return total + abs(pulse.pos - keyframes[-1][1])


@pytest.mark.safety("SR-8")
def test_no_pulse_while_the_hand_is_still(station, rig):
    scan(station, rig, Motion(30).hold(10), 8000)
    assert station.state() == "EMITTING"
    assert rig.pulses == []


@pytest.mark.safety("SR-8")
def test_no_pulse_from_tremor(station, rig):
    scan(station, rig, Motion(30).jitter(0.08, 0.05, 8), 8000)  # +-0.08 mm at 20 Hz
    assert rig.pulses == []


@pytest.mark.safety("SR-8")
def test_pulses_resume_when_the_hand_moves_again(station, rig):
    m = Motion(0).move(50, 60).hold(3).move(50, 60)
    t0 = scan(station, rig, m, 5000)
    still = [p for p in rig.pulses if 0.85e6 < p.t_us - t0 < 3.8e6]
    assert still == []
    assert len(rig.pulses) >= 25


strokes = hs.lists(hs.tuples(hs.integers(10, 120), hs.integers(15, 90), hs.sampled_from([0, 0, 0.3])),
                   min_size=1, max_size=6)


@pytest.mark.safety("SR-8")
@target_settings(max_examples=20)
@given(strokes=strokes)
def test_pulses_sit_on_the_distance_grid(fresh_target, strokes):
    """Below the rate limit, consecutive pulses are one spacing of path apart,
    within one encoder count, whatever the strokes, speeds and pauses. Across a
    turn a pulse may come late by the deadband (4 counts) plus one loop period
    of travel, never early."""
    m = Motion(0)
    for i, (length, speed, pause) in enumerate(strokes):
        m.move(length if i % 2 == 0 else -length, speed)
        if pause:
            m.hold(pause)
    with fresh_target() as (device, rig):
        st = Station(device, rig)
        t0 = scan(st, rig, m, m.end_s * 1000 + 100)
        path = [encoder_path(m.keyframes(20, t0), p) for p in rig.pulses]
        # every keyframe may be a turn: (its time, counts per loop period of the stroke after it)
        pts = m.points
        turns = [(t0 + round(ta * 1e6), LOOP_MS * abs(xb - xa) / (tb - ta) * 20 / 1000)
                 for (ta, xa), (tb, xb) in zip(pts[1:], pts[2:])]
        for a, b, pa, pb in zip(rig.pulses, rig.pulses[1:], path, path[1:]):
            late = max([DEADBAND + c for t, c in turns if a.t_us < t <= b.t_us], default=0)
            assert SPACING_COUNTS - 1 <= pb - pa <= SPACING_COUNTS + 1 + late, (a, b, pb - pa)
        total = m.path_mm_at(m.end_s) * 20
        assert len(rig.pulses) >= int(total / SPACING_COUNTS) - 2


@pytest.mark.safety("SR-7")
def test_too_fast_clamps_the_rate_and_reports_underdosing(station, rig):
    scan(station, rig, Motion(0).sweeps(200, 250, 10), 6000)
    times = [p.t_us for p in rig.pulses]
    assert len(times) > 50
    assert min(b - a for a, b in zip(times, times[1:])) >= MIN_PERIOD_US
    for i, t in enumerate(times):  # no 1 s window holds more than 10.5 J
        assert sum(1 for u in times[i:] if u - t < 1_000_000) * PULSE_J <= 10.5
    st = station.device.query_status()
    assert float(st["under_mm"]) > 100
    assert station.device.events_named("speed-high")


@pytest.mark.safety("SR-7")
@target_settings(max_examples=10)
@given(speed=hs.integers(100, 600), rate=hs.integers(10, 40))
def test_average_power_holds_whatever_the_program_and_hand(fresh_target, speed, rate):
    prog = {"phase": [dict(TEST_SCAN["phase"][0], rate_hz=rate)]}
    with fresh_target() as (device, rig):
        st = Station(device, rig)
        st.emitting(program=prog)
        rig.hand(Motion(0).sweeps(150, speed, 30))
        st.advance(4000)
        times = [p.t_us for p in rig.pulses]
        assert times
        period = max(MIN_PERIOD_US, -(-1_000_000 // rate))
        assert min((b - a for a, b in zip(times, times[1:])), default=period) >= period
        for i, t in enumerate(times):
            assert sum(1 for u in times[i:] if u - t < 1_000_000) * PULSE_J <= 10.5


def test_speed_window_events(station, rig):
    scan(station, rig, Motion(0).move(30, 10).move(100, 60), 5000)
    names = [e.name for e in station.device.events if e.name.startswith("speed")]
    assert names[:2] == ["speed-low", "speed-ok"], names


@pytest.mark.safety("SR-7")
def test_dwell_limit_caps_energy_per_centimetre(station, rig):
    scrub = Motion(0)
    for _ in range(100):
        scrub.move(5, 100).move(-5, 100)
    scan(station, rig, scrub, 10_000)
    limits = station.device.request("LIMITS").fields
    cap_j = int(limits["dwell_mj_per_cm_max"]) / 1000
    window_us = int(limits["dwell_window_ms"]) * 1000
    assert rig.pulses
    for p in rig.pulses:
        near = [q for q in rig.pulses if abs(q.pos - p.pos) <= 100 and 0 <= p.t_us - q.t_us < window_us]
        assert len(near) * PULSE_J <= cap_j + 1e-9
    assert len(rig.pulses) * PULSE_J > cap_j / 2  # it did scan, then held back


@pytest.mark.safety("SR-9")
def test_trigger_point_delivers_its_energy_while_still(station, rig):
    station.emitting(program=POINTS, motion=Motion(40).hold(20))
    station.advance(10_000)
    assert len(rig.pulses) == 86  # 31.25 J / 0.36 J, whole pulses
    assert station.device.events_named("point-done")
    assert station.state() == "PAUSED"
    times = [p.t_us for p in rig.pulses]
    assert min(b - a for a, b in zip(times, times[1:])) >= 100_000


@pytest.mark.safety("SR-9")
@pytest.mark.parametrize("speed", [5, 20, 80])
@pytest.mark.parametrize("way", [1, -1])
def test_moving_off_a_trigger_point_aborts_it(station, rig, speed, way):
    station.emitting(program=POINTS, motion=Motion(40).hold(2).move(20 * way, speed).hold(10))
    station.advance(8000)
    assert station.device.events_named("point-abort")
    anchor = rig.pulses[0].pos
    assert all(abs(p.pos - anchor) <= 10 + 1 for p in rig.pulses)  # 0.5 mm = 10 counts
    t_off = rig.enable_drops()[-1]
    assert [p for p in rig.pulses if p.t_us > t_off] == []
    assert station.state() == "PAUSED"


@pytest.mark.safety("SR-8")
def test_recorded_profile_replays_on_the_grid(station, rig, tmp_path):
    """A recorded hand (time_s, position_mm rows) paces like a built one."""
    rows = ["time_s,position_mm"]
    for i in range(301):  # 3 s: out 60 mm and back at a varying speed
        t = i / 100
        rows.append(f"{t:.2f},{60 * (1 - abs(1 - t / 1.5)) ** 1.2:.4f}")
    csv = tmp_path / "hand.csv"
    csv.write_text("\n".join(rows) + "\n")
    m = Motion.from_csv(csv)
    t0 = scan(station, rig, m, 3200)
    path = [encoder_path(m.keyframes(20, t0), p) for p in rig.pulses]
    gaps = [b - a for a, b in zip(path, path[1:])]
    assert len(gaps) > 20
    assert sum(1 for g in gaps if abs(g - SPACING_COUNTS) <= 1) >= len(gaps) - 2  # the turn may be late
    assert all(g >= SPACING_COUNTS - 1 for g in gaps)  # never early


def test_many_short_advances_do_not_overflow_the_keyframe_queue(rig):
    rig.hand(Motion(10).jitter(0.3, 0.05, 60))  # a keyframe every 25 ms, 2,400 in all
    for _ in range(1500):  # 1.5 s in 1 ms steps
        rig.advance(1)
    assert abs(rig.position() - 200) <= 6  # still about 10 mm


def test_a_long_advance_over_a_dense_motion_goes_in_steps(rig):
    rig.hand(Motion(10).jitter(0.3, 0.004, 3).hold(1))  # a keyframe every 2 ms
    assert rig.advance(3500) >= 3_500_000
    assert rig.position() == 200
