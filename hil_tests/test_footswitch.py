"""The footswitch on the simulated board: a pulse needs a press that starts
once the ready delay has passed (SR-4, SR-5), and lifting it stops emission
at once (SR-2). What the laser did is read from the rig (enable edges,
pulses), the footswitch edges from the rig's own replies."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from handpiece.motion import Motion

READY_DELAY_US = 2_000_000  # the reference board's ready delay (checked below)
LEAD_US = 50_000  # the prelude before READY, where early presses fall
LIFT_TO_DROP_US = 4_000  # on a bench: two control periods (2 ms each); a lift is not debounced

# A trigger-point program: pulses on time alone (10 Hz), the hand still, and
# 277 pulses, so many examples can emit on one device without finishing it.
POINT = {
    "program": {"name": "one long point"},
    "phase": [{"name": "point", "mode": "point", "width_us": 120, "power_w": 3000, "rate_hz": 10,
               "energy_j": 100, "points": 1, "tol_mm": 0.5}],
}


def enable_rises(rig, since):
    return [t for t, name, v in rig.outputs[since:] if name == "en" and v == 1]


def press_in_effect(edges, t):
    """The time of the press the footswitch is held by at t, or None if it is up."""
    last = None
    for te, pressed in edges:
        if te > t:
            break
        last = te if pressed else None
    return last


def back_to_standby(station, rig):
    """The device to STANDBY with the footswitch up and the point program
    loaded; the first call sets it up. Examples share one device: this is
    what lets each run in a fraction of a second."""
    if station.ready_delay_ms == 0:
        station.standby()
        assert station.ready_delay_ms * 1000 == READY_DELAY_US
        station.load(POINT)
    rig.release()
    station.advance(30)
    if station.state() in ("READY", "PAUSED", "DONE"):
        station.device.request("STANDBY")
    assert station.state() == "STANDBY"


# Footswitch edges (us from READY): a few around entering READY or anywhere
# in the delay, and at least one around the delay's end, where a held or
# early press could slip through.
EARLY = hs.lists(hs.one_of(hs.integers(-LEAD_US, 40_000), hs.integers(-LEAD_US, READY_DELAY_US)), max_size=2)
LATE = hs.lists(hs.integers(READY_DELAY_US - 40_000, READY_DELAY_US + 40_000), min_size=1, max_size=3)


@pytest.mark.safety("SR-4")
@pytest.mark.safety("SR-5")
@pytest.mark.needs_virtual_clock  # READY and each footswitch edge at an exact instant
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(early=EARLY, late=LATE, held=hs.booleans(), via_fault=hs.booleans())
def test_a_pulse_needs_a_press_that_starts_after_the_ready_delay(station, rig, early, late, held, via_fault):
    """The footswitch toggles at the given times around READY and the end of
    its delay, starting held (`held`), possibly held through a fault reset
    first (`via_fault`). The laser may be enabled only by a press that began
    at or after the delay's end; such a press, held, must emit."""
    back_to_standby(station, rig)
    n_out = len(rig.outputs)
    foot = []  # (t_us, pressed)
    if held:
        foot.append((rig.press(), True))
        station.advance(30)
    if via_fault:  # an e-stop trip and its reset, the footswitch as it is
        rig.open("estop")
        station.advance(10)
        rig.close("estop")
        station.advance(30)
        station.device.request("RESET")
    t_ready = rig.now_us() + LEAD_US
    t_end = t_ready + READY_DELAY_US
    plan = sorted([(t_ready + e, 1) for e in set(early + late)] + [(t_ready, 0)])  # READY before an edge at its time
    pressed = held
    for t, is_edge in plan:
        if t > rig.now_us():
            rig.advance((t - rig.now_us()) / 1000)
        if is_edge:
            pressed = not pressed
            foot.append(((rig.press if pressed else rig.release)(), pressed))
        else:
            station.device.request("READY")
            assert rig.now_us() == t_ready
    station.advance((max(t_end, plan[-1][0]) + 300_000 - rig.now_us()) / 1000)

    for te in enable_rises(rig, n_out):
        start = press_in_effect(foot, te)
        assert start is not None and start >= t_end, (
            f"enabled at {te - t_ready} us after READY by a press at "
            f"{None if start is None else start - t_ready} us (delay ends at {READY_DELAY_US})")
    assert all(p.t_us >= t_end for p in rig.pulses if p.t_us >= t_ready - LEAD_US)
    last_t, last_pressed = foot[-1] if foot else (0, False)
    if last_pressed and last_t >= t_end:  # a press after the delay, held: it must emit
        assert station.state() == "EMITTING"
        assert [p for p in rig.pulses if p.t_us >= last_t]


def release_while_armed(station, rig, mode):
    """Emit in `mode`, lift the footswitch between two pulses (the next one
    is armed then), and return the release time."""
    if mode == "scan":
        station.emitting(motion=Motion(0).sweeps(100, 60, 36))
    else:
        station.emitting(POINT)  # the hand still on the point
    station.advance(550)
    assert len(rig.pulses) >= 4 and rig.enable_level() == 1
    return rig.release()


@pytest.mark.safety("SR-2")
@pytest.mark.parametrize("mode", ["scan", "point"])
def test_lifting_the_footswitch_stops_emission_at_once(station, rig, mode):
    t_up = release_while_armed(station, rig, mode)
    n = len(rig.pulses)
    station.advance(1000)
    drop = rig.enable_drops()[-1]
    if station.virtual:
        assert drop == t_up  # the same instant on the virtual clock
    else:  # on a bench the lift reaches the device through the rig's line, and the loop acts on it
        assert t_up <= drop <= t_up + LIFT_TO_DROP_US
        n = len([p for p in rig.pulses if p.t_us <= drop])
    assert rig.enable_level() == 0
    assert len(rig.pulses) == n and all(p.t_us <= drop for p in rig.pulses)
    assert station.state() == "PAUSED"
    rig.press()  # a new press goes on
    station.advance(500)
    assert station.state() == "EMITTING" and len(rig.pulses) > n


@pytest.mark.safety("SR-2")
@pytest.mark.needs_virtual_clock
def test_a_stop_byte_cancels_a_press_still_being_debounced(station, rig):
    """'!' disarms the footswitch in any state: a press that goes down just
    before it, still inside the debounce time, does not fire when it settles;
    lift and press again does."""
    station.ready(POINT)
    n_stops = len(station.device.events_named("stop"))
    rig.press()
    station.advance(5)  # the contact is down, its debounce (20 ms) not over
    station.device.stop()
    station.device.wait(lambda: len(station.device.events_named("stop")) > n_stops, what="stop event")
    station.advance(300)
    assert station.state() == "READY" and rig.enable_level() == 0 and not rig.pulses
    rig.release()
    station.advance(50)
    rig.press()
    station.advance(300)
    assert station.state() == "EMITTING" and rig.pulses
