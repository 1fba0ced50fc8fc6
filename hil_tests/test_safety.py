"""Safety core over the serial line on the simulated board: off by default,
emission guards, interlocks, latched faults, ready delay, watchdog, host
supervision, hard limits (SR-1..SR-5, SR-11, SR-13, SR-15). What the laser did
is read from the rig (enable line, indicator, pulses), not from the device's
own account."""
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from handpiece.device import DeviceError
from handpiece.motion import Motion
from handpiece.pytest_plugin import target_settings
from handpiece.strategy import Station

INTERLOCKS = ("door", "estop", "key", "handpiece", "temp", "flow")
E_STATE, E_PROGRAM, E_INTERLOCK, E_FAULTED = 7, 11, 12, 13
F_INTERLOCK, F_ESTOP, F_WATCHDOG, F_EXCEPTION, F_LINK = 2, 3, 4, 5, 8


def long_sweep():
    """The hand sweeping 100 mm strokes at 60 mm/s for a minute."""
    return Motion(0).sweeps(100, 60, 36)


def pulses_after(rig, t_us):
    return [p for p in rig.pulses if p.t_us > t_us]


def fault_code(device):
    return int(device.query_status()["fault"])


def watchdog_ms(device):
    """The board's watchdog timeout: its boards/<name>/board.py setting, else the reference board's."""
    board = Path(__file__).resolve().parents[1] / "boards" / device.hello()["board"] / "board.py"
    m = re.search(r'^SETTINGS\["wdt_timeout_ms"\] = (\d+)$', board.read_text() if board.is_file() else "", re.M)
    return int(m.group(1)) if m else 200  # boards/shared/reference.py


@pytest.mark.safety("SR-1")
def test_boot_leaves_outputs_off(station, rig):
    station.standby()
    station.advance(500)
    assert rig.enable_level() == 0
    assert not [o for o in rig.outputs if o[2] == 1]
    assert rig.pulses == []


@pytest.mark.safety("SR-1")
@pytest.mark.needs_reset_model
def test_exception_drops_enable_before_the_restart(station, rig):
    station.emitting(motion=long_sweep())
    station.advance(500)
    assert rig.pulses and rig.enable_level() == 1
    n_log = len(rig.log)
    t_crash = rig.now_us()
    rig.crash()
    station.advance(300)
    after = rig.log[n_log:]
    off = next(i for i, line in enumerate(after) if line.endswith("en=0"))
    restart = next(i for i, line in enumerate(after) if "boot cause=3" in line)
    assert off < restart, after  # laser off first, then the firmware restarts
    assert pulses_after(rig, rig.outputs[-1][0]) == []
    assert station.device.events_named("exception")
    assert station.state() == "FAULT" and fault_code(station.device) == F_EXCEPTION
    assert rig.pulses[-1].t_us <= t_crash


@pytest.mark.safety("SR-1")
@pytest.mark.needs_reset_model
def test_the_firmware_itself_drives_outputs_off_at_boot(station, rig):
    """A soft reset leaves the output latches as they were: only the
    firmware's own first step can turn the laser off."""
    station.emitting(motion=long_sweep())
    station.advance(500)
    assert rig.enable_level() == 1
    n_log = len(rig.log)
    rig.soft_reset()
    station.advance(300)
    after = rig.log[n_log:]
    boot = next(i for i, line in enumerate(after) if "boot cause=2" in line)
    assert after[boot + 1].endswith("en=0"), after  # the first thing after the restart
    assert rig.enable_level() == 0
    assert pulses_after(rig, int(after[boot].split()[1])) == []


@pytest.mark.safety("SR-1")
@pytest.mark.safety("SR-11")
@pytest.mark.needs_loop_stall
def test_stalled_loop_is_bitten_by_the_watchdog(station, rig):
    wdt_ms = watchdog_ms(station.device)
    station.emitting(motion=long_sweep())
    t0 = station.advance(500)
    assert rig.enable_level() == 1
    t_hang = rig.stall(wdt_ms + 800) - (wdt_ms + 800) * 1000  # t0 on a virtual clock; later on a running one
    rig.advance(wdt_ms + 1300)  # on the rig's clock: a hung device cannot tell the time
    bites = [t for t, what in rig.resets if what == "watchdog"]
    assert bites and t0 <= t_hang < bites[0] <= t_hang + wdt_ms * 1000 + 1_000  # within its timeout
    drops = [t for t in rig.enable_drops() if t >= t0]
    assert drops and drops[0] <= bites[0]
    assert pulses_after(rig, bites[0]) == []
    assert station.state() == "FAULT" and fault_code(station.device) == F_WATCHDOG


@pytest.mark.safety("SR-11")
def test_a_healthy_loop_is_never_bitten(station, rig):
    station.emitting(motion=long_sweep())
    station.advance(5000)
    assert not [r for r in rig.resets if r[1] == "watchdog"]
    assert station.state() == "EMITTING"


@pytest.mark.safety("SR-2")
@pytest.mark.parametrize("setup,code,text", [
    (lambda st, rig: rig.open("key"), E_INTERLOCK, "key off"),
    (lambda st, rig: rig.open("door"), E_INTERLOCK, "door open"),
    (lambda st, rig: rig.open("flow"), E_INTERLOCK, "flow open"),
    (lambda st, rig: st.device.request("PCLR"), E_PROGRAM, "no program"),
])
def test_ready_is_refused_with_the_reason(station, rig, setup, code, text):
    station.standby()
    station.load()
    setup(station, rig)
    station.advance(50)
    with pytest.raises(DeviceError) as e:
        station.device.request("READY")
    assert e.value.code == code and text in e.value.text
    assert station.state() == "STANDBY"


@pytest.mark.safety("SR-2")
def test_footswitch_alone_never_emits(station, rig):
    station.standby()
    station.load()
    rig.hand(long_sweep())
    rig.press()
    station.advance(3000)  # STANDBY, footswitch down, hand moving
    assert rig.pulses == [] and rig.enable_level() == 0
    assert station.state() == "STANDBY"


@pytest.mark.safety("SR-2")
def test_ready_without_footswitch_never_emits(station, rig):
    station.ready()
    rig.hand(long_sweep())
    station.advance(3000)
    assert rig.pulses == [] and station.state() == "READY"


@pytest.mark.safety("SR-2")
def test_emission_with_everything_in_place(station, rig):
    station.emitting(motion=long_sweep())
    station.advance(1000)
    assert station.state() == "EMITTING" and len(rig.pulses) > 5


@pytest.mark.safety("SR-3")
@pytest.mark.parametrize("name", INTERLOCKS)
@pytest.mark.needs_virtual_clock
def test_interlock_trip_stops_emission_at_once(station, rig, name):
    station.emitting(motion=long_sweep())
    station.advance(700)
    assert rig.pulses
    t_trip = rig.open(name)
    station.advance(1000)
    assert pulses_after(rig, t_trip) == []
    drops = rig.enable_drops()
    assert drops and drops[-1] == t_trip  # the same instant on the virtual clock
    assert station.state() == "FAULT"
    code = F_ESTOP if name == "estop" else F_INTERLOCK
    assert fault_code(station.device) == code
    fault = station.device.events_named("fault")[-1]
    assert (name in fault.text) or (name == "estop" and "emergency stop" in fault.text)


@pytest.mark.safety("SR-3")
@target_settings(max_examples=25)
@given(trip_ms=hs.integers(min_value=1, max_value=1500), name=hs.sampled_from(INTERLOCKS),
       speed=hs.sampled_from([20, 60, 100, 250]))
def test_no_pulse_after_a_trip_at_any_moment(fresh_target, trip_ms, name, speed):
    with fresh_target() as (device, rig):
        st = Station(device, rig)
        st.emitting(motion=Motion(0).sweeps(80, speed, 40))
        rig.advance(trip_ms)
        t_trip = rig.open(name)
        st.advance(500)
        assert pulses_after(rig, t_trip) == []
        assert rig.enable_level() == 0
        assert st.state() == "FAULT"


@pytest.mark.safety("SR-3")
@pytest.mark.parametrize("armed", ["READY", "PAUSED"])
def test_interlock_opening_while_armed_latches_a_fault(station, rig, armed):
    """Armed but not emitting (ready delay passed, or footswitch lifted): an
    opening interlock trips at once, and pressing the footswitch fires nothing."""
    if armed == "PAUSED":
        station.emitting(motion=long_sweep())
    else:
        station.ready()
    station.advance(300)
    rig.release()
    station.advance(50)
    assert station.state() == armed
    t_trip = rig.open("door")
    station.advance(50)
    assert station.state() == "FAULT" and fault_code(station.device) == F_INTERLOCK
    assert rig.enable_level() == 0
    assert [v for t, n, v in rig.outputs if n == "ind" and t >= t_trip][-1:] == [0]
    rig.press()
    station.advance(3000)
    assert pulses_after(rig, t_trip) == [] and station.state() == "FAULT"


def door_trip_while_emitting(station, rig):
    """Emit, open the door, close it again: the fault stays latched."""
    station.emitting(motion=long_sweep())
    station.advance(500)
    rig.open("door")
    station.advance(100)
    rig.close("door")
    station.advance(100)


@pytest.mark.safety("SR-4")
def test_fault_latches_until_reset_after_the_cause_is_gone(station, rig):
    door_trip_while_emitting(station, rig)
    rig.release()
    station.advance(50)
    assert station.state() == "FAULT"  # closing the door does not clear it
    with pytest.raises(DeviceError) as e:
        station.device.request("READY")
    assert e.value.code == E_FAULTED
    rig.open("door")
    station.advance(50)
    with pytest.raises(DeviceError) as e:
        station.device.request("RESET")
    assert e.value.code == E_INTERLOCK and "door still open" in e.value.text
    assert station.state() == "FAULT"
    rig.close("door")
    station.advance(50)
    station.device.request("RESET")
    assert station.state() == "STANDBY"


@pytest.mark.safety("SR-4")
def test_footswitch_held_through_reset_does_not_fire(station, rig):
    door_trip_while_emitting(station, rig)  # footswitch still held all along
    station.device.request("RESET")
    station.device.request("READY")
    n = len(rig.pulses)
    station.advance(4000)
    assert len(rig.pulses) == n and station.state() == "READY"
    rig.release()
    station.advance(100)
    rig.press()
    station.advance(500)
    assert station.state() == "EMITTING" and len(rig.pulses) > n


@pytest.mark.safety("SR-4")
@pytest.mark.safety("SR-5")
def test_indicator_and_ready_delay_before_the_first_pulse(station, rig):
    station.standby()
    station.load()
    rig.hand(long_sweep())
    t_asked = rig.now_us()
    station.device.request("READY")
    t_ok = rig.now_us()
    # Where time runs on by itself (an emulated or real board), the rig's
    # clock read after the answer is later than the transition: READY's time
    # is the rig's own stamp of the indicator lighting, taken as the loop
    # entered READY. On the virtual clock all three are the same instant.
    ind_on = [t for t, n, v in rig.outputs if n == "ind" and v == 1]
    assert len(ind_on) == 1 and t_asked <= ind_on[0] <= t_ok  # lit on entering READY
    t_ready = ind_on[0]
    station.advance(100)
    rig.press()  # pressed early and held: never fires (SR-4)
    station.advance(1800)
    assert rig.pulses == [] and station.state() == "READY"
    station.advance(1000)
    assert rig.pulses == [] and station.state() == "READY"
    rig.release()  # lifted and pressed again after the delay: fires
    station.advance(50)
    t_press = rig.press()
    station.advance(500)
    assert rig.pulses
    assert rig.pulses[0].t_us >= max(t_press, t_ready + 2_000_000)
    assert [o for o in rig.outputs if o[1] == "ind" and t_ready < o[0] <= rig.pulses[0].t_us] == []  # lit throughout
    assert station.state() == "EMITTING"


def indicator(rig):
    """The indicator's last level the rig reported. A round trip on the rig
    channel first: the device's reply and the rig's notifications come over
    two channels, read by two threads, so an `o ... ind=` line sent before the
    reply may not have been read yet when the reply is."""
    rig.now_us()
    return [v for _, name, v in rig.outputs if name == "ind"][-1]


@pytest.mark.safety("SR-5")
def test_indicator_lit_exactly_in_ready_states(station, rig):
    station.ready()
    assert indicator(rig) == 1
    station.device.request("STANDBY")
    assert indicator(rig) == 0
    station.emitting(motion=long_sweep())
    assert indicator(rig) == 1
    rig.release()
    station.advance(50)
    assert station.state() == "PAUSED" and indicator(rig) == 1
    rig.open("door")
    station.advance(50)
    assert station.state() == "FAULT" and indicator(rig) == 0
    rig.close("door")
    station.advance(50)
    station.device.request("RESET")
    assert station.state() == "STANDBY" and indicator(rig) == 0


@pytest.mark.safety("SR-13")
def test_heartbeats_keep_supervised_emission_going(station, rig):
    station.standby()
    station.supervise(300)
    station.emitting(motion=long_sweep())
    station.advance(3000)  # heartbeats every 200 ms
    assert station.state() == "EMITTING"


@pytest.mark.safety("SR-13")
def test_silent_host_stops_supervised_emission_within_500_ms(station, rig):
    station.standby()
    station.supervise(300)
    station.emitting(motion=long_sweep())
    station.advance(500)
    station.device.request("HB")
    t_hb = rig.now_us()
    rig.advance(1000)  # the host falls silent
    drops = rig.enable_drops()
    assert drops and t_hb < drops[-1] <= t_hb + 500_000
    assert pulses_after(rig, drops[-1]) == []
    assert fault_code(station.device) == F_LINK


@pytest.mark.safety("SR-13")
@pytest.mark.needs_fault_injection
def test_cut_link_stops_supervised_emission(station, rig):
    station.standby()
    station.supervise(200)
    station.emitting(motion=long_sweep())
    station.advance(300)
    assert station.state() == "EMITTING"
    station.device.request("HB")
    t_cut = rig.now_us()
    rig.host_link(False)
    rig.advance(1000)
    rig.host_link(True)
    drops = rig.enable_drops()
    assert drops and drops[-1] <= t_cut + 500_000
    assert pulses_after(rig, drops[-1]) == []
    assert station.state() == "FAULT" and fault_code(station.device) == F_LINK


BLOCKED_WRITE_MS = 150  # a store write blocking the loop past sup_ms (297 ms on the emulated rp2), under the watchdog


# A trigger point's pulses are timed only: one armed by the loop that wrote would be due at once.
ONE_POINT = {
    "program": {"name": "one point"},
    "phase": [{"name": "point", "mode": "point", "width_us": 120, "power_w": 3000, "rate_hz": 10,
               "energy_j": 100, "points": 1, "tol_mm": 0.5}],
}


def press_into_a_blocked_write(station, rig, sup_ms, mode="scan"):
    """READY under supervision, a heartbeat, then the footswitch: the first
    loop in EMITTING reserves pulses in the store, and that write blocks the
    loop for BLOCKED_WRITE_MS, past sup_ms. Returns the heartbeat's time."""
    station.standby()
    station.supervise(sup_ms)
    station.ready(ONE_POINT if mode == "point" else None)
    rig.hand(Motion(40).hold(60) if mode == "point" else long_sweep())
    station.device.request("HB")
    t_hb = rig.now_us()
    rig.cut_next_write("data", "stall", stall_ms=BLOCKED_WRITE_MS)
    rig.press()
    return t_hb


@pytest.mark.safety("SR-13")
@pytest.mark.needs_virtual_clock
@pytest.mark.needs_reset_model
def test_the_device_does_not_blame_the_host_for_its_own_blocked_write(station, rig):
    """A flash write masks the USB interrupt (rp2, esp32): a heartbeat sent
    meanwhile gets through only once the write is over, and a host that
    waited for an answer first sends it a round trip later. Here it comes
    20 ms after the blocked loop is back: the verdict waits as long again as
    the loop was blocked, so emission goes on."""
    t_hb = press_into_a_blocked_write(station, rig, 100)
    t_back = rig.advance(station.heartbeat_ms)  # the heartbeat is due while the loop is blocked
    assert [w for _, w in rig.resets if w.startswith("cut")] == ["cut data stall"]
    assert t_back >= t_hb + BLOCKED_WRITE_MS * 1000 > t_hb + 100_000  # the device was back after sup_ms
    rig.advance(20)  # the heartbeat held up by the write
    station.device.request("HB")
    station.advance(1000)
    assert station.state() == "EMITTING"
    assert not station.device.events_named("fault")
    assert pulses_after(rig, t_back)


@pytest.mark.safety("SR-13")
@pytest.mark.needs_virtual_clock
@pytest.mark.needs_reset_model
@pytest.mark.parametrize("mode", ["scan", "point"])
def test_silent_host_still_trips_after_a_blocked_write(station, rig, mode):
    """The host falls silent just before a write blocks the loop past sup_ms:
    no pulse after sup_ms (the loop that wrote arms none, the loops after it
    hold emission), and F08 as long again as the loop was blocked after it is
    back (the blocked loop began when the footswitch took effect)."""
    t_hb = press_into_a_blocked_write(station, rig, 100, mode)
    rig.advance(500)
    (t_cut, what), = [r for r in rig.resets if r[1].startswith("cut")]
    assert what == "cut data stall" and t_cut < t_hb + 100_000  # the write began inside sup_ms
    t_back = t_cut + BLOCKED_WRITE_MS * 1000
    drops = rig.enable_drops()
    assert drops and t_back + BLOCKED_WRITE_MS * 1000 <= drops[-1] <= t_back + BLOCKED_WRITE_MS * 1000 + 2_000
    assert pulses_after(rig, t_hb + 100_000) == []
    assert station.state() == "FAULT" and fault_code(station.device) == F_LINK


def test_unsupervised_emission_ignores_silence(station, rig):
    station.emitting(motion=long_sweep())
    station.advance(3000)
    assert station.state() == "EMITTING"


@pytest.mark.safety("SR-15")
def test_hard_limits_cannot_be_raised_over_the_line(station):
    station.standby()
    dev = station.device
    before = dev.request("LIMITS").text
    for attempt in ("SET power_w_max=5000", "SET rate_hz_max=100", "SET session_j_max=99999"):
        with pytest.raises(DeviceError) as e:
            dev.request(attempt)
        assert e.value.code == 5 and "setting " in e.value.text
    too_hot = ("PADD mode=scan width_us=120 power_w=3500 rate_hz=30 energy_j=10 spacing_mm=3.3 "
               "speed_min_mm_s=20 speed_max_mm_s=150")
    with pytest.raises(DeviceError) as e:
        dev.request(too_hot)
    assert e.value.code == E_PROGRAM and "power_w 3500 > 3000" in e.value.text
    assert dev.request("LIMITS").text == before


@pytest.mark.safety("SR-15")
@pytest.mark.parametrize("field,value,detail", [
    ("width_us", "200", "width_us 200 > 150"),
    ("width_us", "50", "width_us 50 < 100"),
    ("rate_hz", "60", "rate_hz 60 > 40"),
    ("energy_j", "2000", "energy_j 2000 > 1500"),
])
def test_program_outside_limits_is_refused_with_the_limit(station, field, value, detail):
    station.standby()
    words = {"mode": "scan", "width_us": "120", "power_w": "3000", "rate_hz": "30", "energy_j": "10",
             "spacing_mm": "3.3", "speed_min_mm_s": "20", "speed_max_mm_s": "150"}
    words[field] = value
    with pytest.raises(DeviceError) as e:
        station.device.request("PADD " + " ".join(f"{k}={v}" for k, v in words.items()))
    assert detail in e.value.text


@pytest.mark.safety("SR-2")
def test_stop_byte_stops_emission_at_once(station, rig):
    station.emitting(motion=long_sweep())
    station.advance(500)
    t_stop = rig.now_us()
    station.device.stop()
    station.advance(1000)  # footswitch still held
    drops = [t for t in rig.enable_drops() if t >= t_stop]
    assert drops, "the enable never dropped"
    if station.virtual:  # device time stands still until the stop byte is in
        assert drops[0] == t_stop
    assert pulses_after(rig, drops[0]) == []  # on a wall clock the byte takes a moment to arrive
    assert rig.enable_level() == 0 and station.state() == "PAUSED"
    rig.release()
    station.advance(50)
    rig.press()
    station.advance(500)
    assert station.state() == "EMITTING" and pulses_after(rig, t_stop)


@pytest.mark.safety("SR-2")
def test_stop_byte_before_emission_disarms_the_footswitch(station, rig):
    station.standby()
    station.load()
    rig.hand(long_sweep())
    station.device.request("READY")
    rig.press()  # held through the ready delay...
    station.advance(500)
    station.device.stop()  # ...and the operator hits stop
    station.advance(3000)
    assert rig.pulses == [] and station.state() == "READY"


@pytest.mark.safety("SR-2")
@pytest.mark.parametrize("command", ["PCLR", "PEND 1", "NEWSESSION",
                                     "PADD mode=point width_us=120 power_w=3000 rate_hz=10 energy_j=5 points=1"
                                     " tol_mm=0.5"])
def test_program_cannot_change_while_armed(station, rig, command):
    station.emitting(motion=long_sweep())
    station.advance(300)
    before = station.device.request("PROG").text
    with pytest.raises(DeviceError) as e:
        station.device.request(command)
    assert e.value.code == E_STATE and "EMITTING" in e.value.text
    assert station.device.request("PROG").text == before
    assert station.state() == "EMITTING"


@pytest.mark.safety("SR-13")
def test_supervision_cannot_be_switched_off_while_armed(station, rig):
    station.standby()
    station.supervise(300)
    station.ready()
    with pytest.raises(DeviceError) as e:
        station.device.request("SET sup_ms=0")
    assert e.value.code == E_STATE
    assert station.device.request("GET").fields["sup_ms"] == "300"
