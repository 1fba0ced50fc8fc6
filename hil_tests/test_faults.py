"""Faults and the host link on the simulated board: every fault is reported
and the gravest is named, and RESET needs every cause gone (SR-4, SR-10);
the supervision limit is met at the limit, not a loop later (SR-13); a host
that closes its end of the link is a lost link, and the firmware runs on
(SR-11, SR-13). What the laser did is read from the rig."""
import pytest

from handpiece.device import Device, DeviceError
from handpiece.motion import Motion
from handpiece.strategy import Station
from handpiece.targets import UnixPortTarget
from handpiece.transport import SerialTransport

E_INTERLOCK, E_FAULTED = 12, 13
F_INTERLOCK, F_ESTOP, F_PHOTODIODE, F_STRAY_LIGHT, F_LINK = 2, 3, 6, 7, 8
CONTROL_PERIOD_US = 2_000  # the reference board's loop period


def long_sweep():
    return Motion(0).sweeps(100, 60, 36)


def reported(device):
    """Fault codes in the order their events came."""
    return [int(e.text.split()[0][1:]) for e in device.events_named("fault")]


def fault_code(device):
    return int(device.query_status()["fault"])


def bad_pulse(station, rig):
    rig.photodiode(gain_pct=50)  # the next pulse reads half its energy


def stray_light(station, rig):
    rig.photodiode(stuck=True)


def clear_photodiode(rig):
    rig.photodiode(gain_pct=100, stuck=False)


@pytest.mark.safety("SR-4")
@pytest.mark.safety("SR-10")
@pytest.mark.parametrize("first,first_code,gravest", [
    (bad_pulse, F_PHOTODIODE, F_ESTOP),  # e-stop after a photodiode fault: graver, it is named
    (stray_light, F_STRAY_LIGHT, F_STRAY_LIGHT),  # e-stop after light with no pulse: still reported
])
@pytest.mark.needs_photodiode_faults
def test_a_later_fault_is_reported_and_reset_needs_every_cause_gone(station, rig, first, first_code, gravest):
    station.emitting(motion=long_sweep())
    station.advance(300)
    first(station, rig)
    station.advance(300)
    assert station.state() == "FAULT" and reported(station.device) == [first_code]
    rig.open("estop")
    station.advance(50)
    assert reported(station.device) == [first_code, F_ESTOP]
    assert fault_code(station.device) == gravest
    with pytest.raises(DeviceError) as e:
        station.device.request("READY")
    names = {F_ESTOP: "emergency stop", F_STRAY_LIGHT: "light without a commanded pulse"}
    assert e.value.code == E_FAULTED and names[gravest] in e.value.text
    with pytest.raises(DeviceError) as e:
        station.device.request("RESET")
    assert e.value.code in (E_INTERLOCK, E_FAULTED)  # the e-stop (or the light) is still there
    rig.close("estop")
    station.advance(50)
    if first_code == F_STRAY_LIGHT:
        with pytest.raises(DeviceError) as e:
            station.device.request("RESET")
        assert e.value.code == E_FAULTED and "photodiode still lit" in e.value.text
    clear_photodiode(rig)
    station.advance(50)
    station.device.request("RESET")
    assert station.state() == "STANDBY" and fault_code(station.device) == 0
    rig.open("estop")  # every fault was cleared: the same cause latches and reports again
    station.advance(50)
    assert reported(station.device) == [first_code, F_ESTOP, F_ESTOP]


@pytest.mark.safety("SR-4", "SR-3")
@pytest.mark.parametrize("name,code", [("door", F_INTERLOCK), ("flow", F_INTERLOCK), ("estop", F_ESTOP)])
@pytest.mark.needs_loop_stall
@pytest.mark.needs_virtual_clock  # the opening and closing fall inside the 1 ms stall only if time stands still
def test_an_opening_shorter_than_a_control_step_is_latched(station, rig, name, code):
    """The loop is held up for 1 ms (less than a control step) while an
    interlock opens and closes again: the loop never samples it open, but the
    trip is latched, as the boards' interrupts latch it."""
    station.emitting(motion=long_sweep())
    station.advance(300)
    assert station.state() == "EMITTING"
    rig.stall(1)
    rig.open(name)
    rig.close(name)
    station.advance(50)
    assert station.state() == "FAULT" and reported(station.device) == [code]
    assert rig.enable_level() == 0


@pytest.mark.safety("SR-4", "SR-3")
def test_causes_arriving_together_all_latch(station, rig):
    """An e-stop and an open door in the same control step: the e-stop's
    fault must not hide the door's (both are recorded, the gravest named)."""
    station.emitting(motion=long_sweep())
    station.advance(300)
    rig.stall(1)  # both open before the loop looks again
    rig.open("door")
    rig.open("estop")
    station.advance(50)
    assert station.state() == "FAULT" and sorted(reported(station.device)) == [F_INTERLOCK, F_ESTOP]
    assert fault_code(station.device) == F_ESTOP
    assert any(e.text.startswith("F02") and e.text.endswith(": door") for e in station.device.events_named("fault"))


@pytest.mark.safety("SR-2")
def test_stop_event_names_the_state_the_stop_arrived_in(station, rig):
    station.emitting(motion=long_sweep())
    station.advance(300)
    station.device.stop()
    station.advance(50)
    station.device.stop()
    station.advance(50)
    assert [e.text for e in station.device.events_named("stop")] == ["EMITTING", "PAUSED"]
    assert [e.text for e in station.device.events_named("state")][-1] == "EMITTING>PAUSED"


@pytest.mark.safety("SR-13")
@pytest.mark.parametrize("sup_ms", [50, 500])
@pytest.mark.parametrize("phase_us", [0, 700, 1_999])
def test_silent_host_trips_at_the_supervision_limit(station, rig, sup_ms, phase_us):
    """The laser goes off no later than sup_ms after the last frame, whatever
    the frame's place in the loop period; and not a loop period before it."""
    station.standby()
    station.supervise(sup_ms)
    station.emitting(motion=long_sweep())
    station.advance(300)
    if phase_us:
        rig.advance(phase_us / 1000)
    station.device.request("HB")
    t_hb = rig.now_us()
    rig.advance(sup_ms + 100)  # the host falls silent
    drops = rig.enable_drops()
    limit = t_hb + sup_ms * 1000
    assert drops and limit - CONTROL_PERIOD_US < drops[-1] <= limit
    assert [p for p in rig.pulses if p.t_us > drops[-1]] == []
    assert fault_code(station.device) == F_LINK


@pytest.mark.safety("SR-11")
@pytest.mark.safety("SR-13")
@pytest.mark.parametrize("sup_ms", [0, 300])
def test_host_closing_the_link_is_a_lost_link(sup_ms):
    """End of input while emitting, supervised or not: the laser goes off
    at once and F08 latches; the firmware runs on, a new host finds the
    fault, and the process still ends with the rig channel."""
    target = UnixPortTarget()
    device, rig = target.open()
    try:
        station = Station(device, rig)
        station.standby()
        if sup_ms:
            station.supervise(sup_ms)
        station.emitting(motion=long_sweep())
        station.advance(300)
        assert rig.enable_level() == 1 and rig.pulses
        port = device.t.port
        t_close = rig.now_us()
        n_out = len(rig.outputs)
        device.close()  # the host's end of the pty closes
        assert rig.wait_notification(lambda: rig.enable_drops(n_out), timeout=10) == [t_close]  # at once
        rig.advance(1000)
        assert [p for p in rig.pulses if p.t_us > t_close] == []
        assert [v for _, name, v in rig.outputs if name == "ind"][-1] == 0  # FAULT
        assert target.proc.poll() is None  # the firmware runs on
        assert not [r for r in rig.resets if r[0] >= t_close]
        target.device = device = Device(SerialTransport(port))  # a host opens the link again
        status = device.query_status()
        assert status["state"] == "FAULT" and int(status["fault"]) == F_LINK
        device.hello()
        device.request("RESET")
        assert device.state() == "STANDBY"
        rig.close_channel()  # the bench goes: the firmware process ends
        assert target.proc.wait(timeout=10) == 0
    finally:
        target.close()


@pytest.mark.safety("SR-11")
def test_host_closing_the_link_in_standby_changes_nothing():
    target = UnixPortTarget()
    device, rig = target.open()
    try:
        Station(device, rig).standby()
        port = device.t.port
        device.close()
        rig.advance(500)
        target.device = device = Device(SerialTransport(port))
        status = device.query_status()
        assert status["state"] == "STANDBY" and status["fault"] == "0"
        assert target.proc.poll() is None and rig.outputs == []
    finally:
        target.close()


@pytest.mark.safety("SR-4")
def test_footswitch_held_at_boot_must_be_lifted_before_reset(station, rig):
    station.standby()
    rig.press()
    rig.power_cycle()  # boots with the footswitch down: F01
    station.advance(50)
    station.hello()
    assert station.state() == "FAULT" and fault_code(station.device) == 1
    with pytest.raises(DeviceError) as e:
        station.device.request("RESET")
    assert e.value.code == E_FAULTED and "footswitch still pressed" in e.value.text
    rig.release()
    station.advance(50)
    station.device.request("RESET")
    assert station.state() == "STANDBY" and fault_code(station.device) == 0


@pytest.mark.safety("SR-10")
@pytest.mark.needs_photodiode_faults
def test_light_at_boot_fails_the_self_test(station, rig):
    station.standby()
    rig.photodiode(stuck=True)
    rig.power_cycle()  # boots with the photodiode lit: the self-test latches F07, STANDBY is never reached
    station.advance(50)
    station.hello()
    assert station.state() == "FAULT" and fault_code(station.device) == F_STRAY_LIGHT
    texts = [e.text for e in station.device.events_named("fault")]
    assert texts and texts[-1].endswith(": light at boot"), texts
