"""Energy accounting, the photodiode check and persistence across resets
(SR-6, SR-10, SR-14), on the simulated board. Pulses are counted by the rig,
which sees the light, not by the device's own account."""
import pytest

from handpiece.device import DeviceError
from handpiece.motion import Motion
from handpiece.program import load
from handpiece.rig import RigError
from handpiece.strategy import Station

E_PROGRAM, E_INTERLOCK, E_FAULTED, E_SESSION = 11, 12, 13, 14
F_PHOTODIODE, F_STRAY = 6, 7

TWO_PHASES = {
    "program": {"name": "two phases"},
    "phase": [
        {"name": "scan", "mode": "scan", "width_us": 120, "power_w": 3000, "rate_hz": 30, "energy_j": 10,
         "spacing_mm": 3.3, "speed_min_mm_s": 20, "speed_max_mm_s": 150},
        {"name": "points", "mode": "point", "width_us": 100, "power_w": 2500, "rate_hz": 20, "energy_j": 3,
         "points": 2, "tol_mm": 0.5},
    ],
}
SCAN_PULSES = 27  # 10 J / 0.36 J: 27 pulses = 9.72 J, a 28th would pass 10 J
POINT_PULSES = 12  # 1.5 J per point / 0.25 J = 6 per point


def sweep():
    return Motion(0).sweeps(100, 80, 40)


def run_scan_to_the_end(station, rig):
    station.emitting(program=TWO_PHASES, motion=sweep())
    station.advance(8000)


@pytest.mark.safety("SR-6")
@pytest.mark.needs_light_meter
def test_phase_ends_on_the_last_whole_pulse(station, rig):
    run_scan_to_the_end(station, rig)
    assert len(rig.pulses) == SCAN_PULSES
    assert sum(p.width_us * p.power_w for p in rig.pulses) <= 10_000_000  # uJ, the target
    done = station.device.events_named("phase-done")[0].fields
    assert done["pulses"] == str(SCAN_PULSES) and done["e_mj"] == "9720" and done["short_mj"] == "280"
    assert station.state() == "PAUSED"  # next phase waits for the operator


@pytest.mark.safety("SR-6")
@pytest.mark.needs_light_meter
def test_session_never_passes_its_target(station, rig):
    run_scan_to_the_end(station, rig)
    rig.release()
    rig.hand(Motion(rig.position() / 20).hold(30))
    for _ in range(2):  # two trigger points, footswitch pressed for each
        station.advance(100)
        rig.press()
        station.advance(2000)
        rig.release()
    station.advance(500)
    rig.press()
    station.advance(3000)  # pressing on after the end delivers nothing
    assert station.state() == "DONE"
    assert len(rig.pulses) == SCAN_PULSES + POINT_PULSES
    total_uj = sum(p.width_us * p.power_w for p in rig.pulses)
    assert total_uj == 27 * 360_000 + 12 * 250_000 <= 13_000_000
    assert station.device.events_named("session-done")[0].fields["e_mj"] == str(total_uj // 1000)
    station.device.request("STANDBY")
    with pytest.raises(DeviceError) as e:
        station.device.request("READY")
    assert e.value.code == E_SESSION and "session complete" in e.value.text


@pytest.mark.safety("SR-6")
def test_program_over_the_hard_cap_is_refused(station):
    station.standby()
    dev = station.device
    dev.request("PCLR")
    phase = ("PADD mode=scan width_us=120 power_w=3000 rate_hz=30 energy_j=800 spacing_mm=3.3 "
             "speed_min_mm_s=20 speed_max_mm_s=150")
    dev.request(phase)
    dev.request(phase)
    with pytest.raises(DeviceError) as e:
        dev.request("PEND 2")
    assert e.value.code == E_PROGRAM and "session energy_j 1599 > 1500" in e.value.text
    assert dev.request("PROG").fields["valid"] == "0"


def test_reference_program_file_totals_1250_j():
    prog = load("programs/knee-oa-reference.toml")
    assert prog.energy_j == 1250
    assert [p.mode for p in prog.phases] == ["scan", "point", "scan"]
    assert [p["energy_j"] for p in prog.phases] == [500, 250, 500]
    assert prog.phases[1]["points"] == 8
    assert float(prog.delivered_j) <= 1250


@pytest.mark.safety("SR-10")
@pytest.mark.parametrize("gain,faults", [(100, False), (85, False), (119, False), (121, True), (79, True),
                                         (80, False), (120, False)])  # exactly +-20 % is inside
@pytest.mark.needs_photodiode_faults
def test_pulse_energy_must_be_within_20_percent(station, rig, gain, faults):
    rig.photodiode(gain_pct=gain)
    station.emitting(motion=sweep())
    station.advance(2000)
    status = station.device.query_status()
    if faults:
        assert status["state"] == "FAULT" and status["fault"] == str(F_PHOTODIODE)
        assert len(rig.pulses) == 1  # the first bad reading stops it
        assert rig.enable_level() == 0
    else:
        assert status["state"] == "EMITTING" and len(rig.pulses) > 10


@pytest.mark.safety("SR-10")
@pytest.mark.needs_photodiode_faults
def test_photodiode_dropout_faults(station, rig):
    station.emitting(motion=sweep())
    station.advance(1000)
    n = len(rig.pulses)
    rig.photodiode(drop=1)
    station.advance(1000)
    later = [p.uj for p in rig.pulses[n:]]
    assert 0 in later, "no pulse went dark"
    dark = later.index(0)
    if station.virtual:  # device time stands still until the fault is in
        assert dark == 0
    # on a wall clock pulses may fire while the request travels; none after the dark one
    assert len(later) == dark + 1
    assert station.device.query_status()["fault"] == str(F_PHOTODIODE)


@pytest.mark.safety("SR-10")
@pytest.mark.needs_photodiode_faults
def test_light_without_a_pulse_faults_in_any_state(station, rig):
    station.standby()
    station.load()
    rig.photodiode(stuck=True)
    station.advance(50)
    assert station.device.query_status()["fault"] == str(F_STRAY)
    with pytest.raises(DeviceError) as e:
        station.device.request("RESET")
    assert "photodiode still lit" in e.value.text
    rig.photodiode(stuck=False)
    station.device.request("RESET")
    assert station.state() == "STANDBY"


def reboot_and_resume(station, rig, program=TWO_PHASES):
    station.hello()
    return station.load(program)


@pytest.mark.safety("SR-14")
@pytest.mark.parametrize("stop_ms", [300, 450, 700])
def test_power_cycle_mid_phase_cannot_reset_the_count(station, rig, stop_ms):
    station.emitting(program=TWO_PHASES, motion=sweep())
    station.advance(stop_ms)
    rig.release()
    station.advance(30)
    before = len(rig.pulses)
    assert 0 < before < SCAN_PULSES
    rig.power_cycle()
    station.advance(10)
    pend = reboot_and_resume(station, rig)
    assert pend["resumed"] == "1" and pend["phase"] == "0"
    assert int(pend["delivered_mj"]) >= before * 360  # never less than was delivered
    station.device.request("READY")
    station.advance(2100)
    rig.press()
    station.advance(6000)
    assert before < len(rig.pulses) <= SCAN_PULSES  # both boots together, never more
    assert station.device.events_named("phase-done")


@pytest.mark.safety("SR-14")
@pytest.mark.needs_torn_write
def test_torn_store_write_keeps_the_count(station, rig):
    station.emitting(program=TWO_PHASES, motion=sweep())
    station.advance(200)
    rig.tear_next_write()
    rig.advance(1500)  # the next reservation write is torn by a power loss (the rig's clock runs through it)
    assert any("torn-write" in what for _, what in rig.resets)
    before = len(rig.pulses)
    status = station.device.query_status()
    assert status["state"] == "FAULT" and status["fault"] == "1"  # booted with the footswitch held
    rig.release()
    station.advance(10)
    station.hello()
    station.device.request("RESET")
    pend = reboot_and_resume(station, rig)
    assert pend["resumed"] == "1"
    assert int(pend["delivered_mj"]) >= before * 360
    station.device.request("READY")
    station.advance(2100)
    rig.press()
    station.advance(6000)
    assert len(rig.pulses) <= SCAN_PULSES


@pytest.mark.safety("SR-14")
def test_another_program_cannot_start_over_an_open_session(station, rig):
    station.emitting(program=TWO_PHASES, motion=sweep())
    station.advance(500)
    rig.release()
    rig.power_cycle()
    station.advance(10)
    station.hello()
    with pytest.raises(DeviceError) as e:
        station.load()  # a different program
    assert e.value.code == E_SESSION and "NEWSESSION" in e.value.text
    station.device.request("NEWSESSION")  # the operator's explicit decision
    assert station.load()["resumed"] == "0"


POINTS = {
    "program": {"name": "points"},
    "phase": [{"name": "points", "mode": "point", "width_us": 120, "power_w": 3000, "rate_hz": 10,
               "energy_j": 62.5, "points": 2, "tol_mm": 0.5}],
}  # 86 pulses per point


@pytest.mark.safety("SR-9")
def test_an_aborted_point_is_not_finished_somewhere_else(station, rig):
    station.emitting(program=POINTS, motion=Motion(40).hold(2).move(30, 40).hold(60))
    station.advance(4000)  # 20-ish pulses at 40 mm, then the hand moves off
    abort = station.device.events_named("point-abort")[0]
    first = [p for p in rig.pulses]
    assert 10 < len(first) < 86 and abort.fields["undelivered"] == str(86 - len(first))
    rig.release()
    station.advance(100)
    rig.press()  # the operator goes on at the new place: a new, whole point
    station.advance(10_000)
    second = rig.pulses[len(first):]
    assert len(second) == 86  # a full point here, not the rest of the old one
    assert len({p.pos for p in second}) == 1 and second[0].pos != first[0].pos
    assert station.device.events_named("point-done")[-1].fields["point"] == "1"


@pytest.mark.safety("SR-9")
def test_a_paused_point_resumes_at_its_own_place_only(station, rig):
    station.emitting(program=POINTS, motion=Motion(40).hold(60))
    station.advance(2000)
    n = len(rig.pulses)
    rig.release()  # a pause, hand still on the point
    station.advance(300)
    rig.press()
    station.advance(10_000)
    assert len(rig.pulses) == 86  # the same point completed, in two parts
    assert station.device.events_named("point-done")[0].fields["point"] == "0"
    assert n < 86


@pytest.mark.safety("SR-14")
def test_reset_during_trigger_points_resumes_without_sticking(station, rig):
    station.emitting(program=POINTS, motion=Motion(40).hold(200))
    station.advance(10_000)  # point 0 done
    rig.release()
    station.advance(100)
    rig.press()
    station.advance(3000)  # part of point 1
    rig.release()
    station.advance(30)
    before = len(rig.pulses)
    rig.power_cycle()
    station.advance(10)
    pend = reboot_and_resume(station, rig, POINTS)
    assert pend["resumed"] == "1" and int(pend["delivered_mj"]) >= before * 360
    station.device.request("READY")
    station.advance(2100)
    rig.press()
    station.advance(10_000)
    assert station.state() == "DONE"  # not stuck in EMITTING
    assert len(rig.pulses) <= 172


@pytest.mark.safety("SR-14")
@pytest.mark.needs_reset_model
def test_unreadable_store_needs_an_explicit_new_session(station, rig):
    station.emitting(motion=sweep())
    station.advance(500)
    rig.release()
    rig.scramble_store()
    rig.power_cycle()
    station.advance(10)
    station.hello()
    assert station.device.query_status()["fault"] == "9"
    with pytest.raises(DeviceError) as e:
        station.device.request("RESET")
    assert e.value.code == E_SESSION and "NEWSESSION" in e.value.text
    station.device.request("NEWSESSION")
    station.device.request("RESET")
    assert station.state() == "STANDBY"


RESERVE_AHEAD = 16  # firmware/session.py: the store is at most this far ahead of the light
WDT_MS = 200  # the reference board's watchdog timeout
RESETS = ("power", "watchdog", "soft", "exception", "kill")  # the HAL's causes, then a killed process
LONG_SCAN = {
    "program": {"name": "long scan and points"},
    "phase": [dict(TWO_PHASES["phase"][0], energy_j=30), TWO_PHASES["phase"][1]],
}
LONG_SCAN_PULSES = 83  # 30 J / 0.36 J


class Treatment:
    """A program through resets of every kind. The light is counted by the
    rig, over every firmware process (a killed process takes its rig along)."""

    def __init__(self, request, station, program, scan_pulses):
        self.target = request.node._hil_target
        self.station = station
        self.program = program
        self.scan_pulses = scan_pulses
        self.gone = []  # pulses seen by the rigs of killed processes
        self.count = [0, 0]  # per phase: the device's count at the last resume
        self.light = [0, 0]  # per phase: the light seen by then

    def pulses(self, phase=None):
        every = self.gone + self.station.rig.pulses
        if phase is None:
            return len(every)
        return sum(1 for p in every if p.power_w == (3000, 2500)[phase])

    def reset(self, cause):
        """Reset the device by `cause` with the footswitch held, as it happens."""
        rig = self.station.rig
        if cause == "kill":
            self.restart()
        else:
            {"power": rig.power_cycle, "soft": rig.soft_reset, "watchdog": lambda: rig.stall(WDT_MS + 100),
             "exception": rig.crash}[cause]()
            self.station.advance(WDT_MS + 50 if cause == "watchdog" else 5)
            assert rig.resets[-1][1] == "boot cause=%d" % RESETS.index(cause)

    def restart(self):
        self.gone += self.station.rig.pulses
        self.station = Station(*self.target.restart())

    def resume(self):
        """Recover as an operator would and upload the same program: it must
        resume, its count at least what the light says and within one reservation."""
        st = self.station
        st.rig.release()
        st.advance(50)
        st.standby()
        if st.device.query_status()["state"] == "FAULT":
            st.device.request("RESET")
        pend = st.load(self.program)
        assert pend["resumed"] == "1", "a reset forgot the session"
        phase = int(pend["phase"])
        mj = int(pend["delivered_mj"]) - (self.scan_pulses * 360 if phase else 0)
        counted = mj // (250 if phase else 360)
        light = self.pulses(phase)
        assert light <= counted, "the device counts less than the light it gave"
        # at most one reservation more than it knew, plus what it fired since
        assert counted <= self.count[phase] + light - self.light[phase] + RESERVE_AHEAD
        self.count[phase], self.light[phase] = counted, light
        return phase

    def emit(self, motion, ms):
        """READY, the ready delay, then a press: emission for `ms`."""
        st = self.station
        st.device.request("READY")
        st.advance(st.ready_delay_ms + 1)
        st.rig.hand(motion)
        st.rig.press()
        st.advance(ms)
        assert st.state() != "READY", "the press did not start emission"

    def finish(self):
        """Trigger points, a press each, until the session is done: never past the target."""
        st = self.station
        for _ in range(4):
            if st.state() == "DONE":
                break
            st.rig.release()
            st.rig.hand(Motion(10).hold(10))
            st.advance(100)
            st.rig.press()
            st.advance(1000)
        assert st.state() == "DONE"
        assert self.pulses(0) <= self.scan_pulses and self.pulses(1) <= POINT_PULSES


@pytest.mark.safety("SR-14", "SR-6")
@pytest.mark.needs_reset_model  # each reset's cause is read from the simulated board's rig ("boot cause=N")
@pytest.mark.parametrize("cause", RESETS)
def test_no_reset_of_any_kind_forgets_the_dose(request, station, cause):
    """Resets at several points of a scan and of a trigger point, one after
    the other (each boot reads what the last one wrote)."""
    t = Treatment(request, station, LONG_SCAN, LONG_SCAN_PULSES)
    station.emitting(program=LONG_SCAN, motion=sweep())
    station.advance(40)
    for at_ms in (130, 260, 410, 0):
        t.reset(cause)
        assert t.resume() == 0
        t.emit(sweep(), at_ms or 8000)
    for at_ms in (120, 0):  # into the first trigger point, then a little into the rest
        st = t.station
        st.rig.release()
        st.rig.hand(Motion(10).hold(10))
        st.advance(100)
        st.rig.press()
        st.advance(at_ms or 60)
        assert t.pulses(1) < POINT_PULSES
        t.reset(cause)
        assert t.resume() == 1
    t.emit(Motion(10).hold(10), 1000)
    t.finish()


@pytest.mark.safety("SR-14", "SR-6")
@pytest.mark.needs_reset_model  # a store write cut at a chosen step
@pytest.mark.parametrize("action", ["power", "soft", "error", "kill", "stall"])
def test_a_store_write_cut_at_any_step_keeps_the_dose(request, station, action):
    """Store writes cut half way through their data, and between removing the
    old slot file and renaming the new one (FAT), by each kind of reset, in a
    scan and at a trigger point: the other slot carries the count. A write
    stalled past the watchdog's timeout is bitten inside the write."""
    t = Treatment(request, station, LONG_SCAN, LONG_SCAN_PULSES)

    def cut(step, ms):
        """The next store write cut at `step` within `ms` of emission."""
        rig = t.station.rig
        rig.cut_next_write(step, action, stall_ms=WDT_MS + 300)
        n = len(rig.resets)
        if action == "kill":
            with pytest.raises(RigError):
                t.station.advance(ms)
            assert [w for _, w in rig.resets[n:]] == ["cut %s kill" % step]
            t.restart()
            return
        t.station.advance(ms)
        seen = rig.resets[n:]
        assert seen and seen[0][1] == "cut %s %s" % (step, action), "no store write was cut"
        assert seen[-1][1] == "boot cause=%d" % {"power": 0, "stall": 1, "soft": 2, "error": 3}[action]
        if action == "stall":
            bite = [tm for tm, w in seen if w == "watchdog"]
            assert bite and bite[0] - seen[0][0] <= (WDT_MS + 1) * 1000  # bitten inside the write

    station.emitting(program=LONG_SCAN, motion=sweep())
    station.advance(150)
    for step in ("data", "swap"):
        cut(step, 600)  # a reservation in the scan
        assert t.resume() == 0
        t.emit(sweep(), 150 if step == "data" else 8000)
    assert t.station.device.events_named("phase-done")
    st = t.station
    st.rig.release()
    st.rig.hand(Motion(10).hold(10))
    st.advance(100)
    st.rig.press()
    cut("swap", 300)  # the first reservation at a trigger point
    assert t.pulses(1) == 0 and t.resume() == 1
    t.emit(Motion(10).hold(10), 1000)
    t.finish()


@pytest.mark.safety("SR-14")
@pytest.mark.needs_reset_model  # the store's files, rewritten between two runs of the firmware
@pytest.mark.parametrize("size", [0, 40])
def test_a_store_left_short_is_unreadable_not_blank(request, station, size):
    """Slot files cut short (empty, as a truncating write leaves them, or part
    of a slot): the count is unknown, so F09 and no new session until NEWSESSION."""
    station.emitting(program=TWO_PHASES, motion=sweep())
    station.advance(300)
    target = request.node._hil_target
    target.kill()
    for slot in target.store.glob("hilt-slot*.bin"):
        slot.write_bytes(slot.read_bytes()[:size])
    station = Station(*target.open())
    station.standby()
    assert station.device.query_status()["fault"] == "9"
    with pytest.raises(DeviceError) as e:
        station.load(TWO_PHASES)
    assert e.value.code == E_SESSION and "NEWSESSION" in e.value.text
    station.device.request("NEWSESSION")
    station.device.request("RESET")
    assert station.load(TWO_PHASES)["resumed"] == "0"


SHORT = {
    "program": {"name": "short"},
    "phase": [dict(TWO_PHASES["phase"][0], energy_j=3)],
}
SHORT_PULSES = 8  # 3 J / 0.36 J: one reservation holds them all, so the next write closes the session


@pytest.mark.safety("SR-14", "SR-6")
@pytest.mark.parametrize("how", [pytest.param(how, marks=pytest.mark.needs_reset_model)  # a write cut at a step
                                 for how in ("power", "soft", "error", "kill", "stall")] + ["done"])
def test_a_completed_session_does_not_begin_again(request, station, how):
    """A reset cuts the session's closing write once its data is whole (or
    the host just missed the end): the host, which never saw session-done,
    uploads the same program again. PEND must not begin a fresh session,
    which would give the whole dose a second time; only NEWSESSION does."""
    t = Treatment(request, station, SHORT, SHORT_PULSES)
    station.emitting(program=SHORT, motion=sweep())
    station.advance(100)
    assert 0 < len(station.rig.pulses) < SHORT_PULSES
    if how == "done":
        station.advance(3000)
        assert station.state() == "DONE"
        station.rig.release()
        station.advance(30)
        station.device.request("STANDBY")
    else:
        rig = station.rig
        rig.cut_next_write("swap", how, stall_ms=WDT_MS + 300)
        if how == "kill":
            with pytest.raises(RigError):
                station.advance(3000)
        else:
            station.advance(3000)
        assert any(w == "cut swap " + how for _, w in rig.resets), "the closing write was not cut"
        if how == "kill":
            t.restart()
    st = t.station
    st.rig.release()
    st.advance(50)
    st.standby()
    if st.device.query_status()["state"] == "FAULT":
        st.device.request("RESET")
    assert t.pulses() == SHORT_PULSES
    with pytest.raises(DeviceError) as e:
        st.load(SHORT)
    assert e.value.code == E_SESSION and "complete" in e.value.text
    with pytest.raises(DeviceError):
        st.device.request("READY")  # no program: nothing to emit
    st.device.request("NEWSESSION")  # the operator's decision: the next patient
    assert st.load(SHORT)["resumed"] == "0"
