"""The 30-bit tick clock wraps every 1074 s on a board. The simulated board
starts just before the wrap so that a test crosses it (SR-5, SR-8, SR-13)."""
import pytest

from handpiece.motion import Motion
from handpiece.strategy import Station
from handpiece.targets import UnixPortTarget

WRAP_US = 1 << 30


@pytest.mark.safety("SR-8")
@pytest.mark.safety("SR-13")
def test_emission_across_the_tick_wrap():
    start = WRAP_US - 3_000_000  # emission starts 1 s before the wrap
    with UnixPortTarget(board_env={"HP_CLOCK_START_US": str(start)}) as (device, rig):
        st = Station(device, rig)
        st.standby()
        st.supervise(300)
        st.ready()
        assert rig.pulses == [] and st.state() == "READY"
        m = Motion(0).sweeps(100, 60, 6)
        t0 = rig.hand(m)
        rig.press()
        st.advance(5000)
        assert st.state() == "EMITTING" and not device.events_named("fault")
        times = [p.t_us for p in rig.pulses]
        assert times[0] < WRAP_US < times[-1] and len(times) > 40
        assert min(b - a for a, b in zip(times, times[1:])) >= 34286
        pos = [p.pos for p in rig.pulses[:20]]  # the first stroke: one spacing apart
        assert all(abs(b - a - 66) <= 1 for a, b in zip(pos, pos[1:])), pos
        assert t0 < times[0]
