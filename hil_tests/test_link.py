"""A host that stops reading, floods or sends huge lines cannot stall the
control loop or make the firmware reboot (SR-11); what could not be sent is
dropped by the documented rule and reported once the link drains
(docs/protocol.md, "Output queue"). Bad input still gets one clear error (SR-12)."""
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from handpiece.motion import Motion
from handpiece.pytest_plugin import target_settings
from handpiece.strategy import Station

CONTROL_PERIOD_US = 2000  # the reference board's loop period (boards/shared/reference.py)
E_TOO_LONG = 3
PHASE = ("mode=scan width_us=120 power_w=3000 rate_hz=30 energy_j=10 spacing_mm=3.3 "
         "speed_min_mm_s=20 speed_max_mm_s=150")


def stats(rig) -> dict[str, int]:
    return {k: int(v) for k, v in (w.split("=") for w in rig.cmd("stats").split())}


def hung_host(station, ms: int, send: bytes = b"") -> dict[str, int]:
    """The host stops reading, optionally writes `send`, and `ms` of device
    time pass; then it reads again and catches up: up to the `lines-lost`
    report, which comes once the device's queue has drained. Returns the loop
    stats of the hung span."""
    dev, rig = station.device, station.rig
    before = stats(rig)
    dev.t.hold_reading()
    if send:
        dev.t.write(send)
    rig.advance(ms)
    during = stats(rig)
    dev.t.resume_reading()
    dev.wait(lambda: dev.events_named("lines-lost"), what="the lines-lost report")
    dev.forget_replies()  # unframed replies from before the report (a flood's)
    dev.sync()
    return {"loops": during["loops"] - before["loops"], "loop_max_us": during["loop_max_us"]}


def assert_never_reset(station):
    dev, rig = station.device, station.rig
    assert [what for _, what in rig.resets] == ["boot"], rig.resets
    assert len(dev.events_named("boot")) == 1 and not dev.events_named("exception")
    assert dev.bad_lines == []  # nothing was cut mid-line


def lost(dev) -> dict[str, int]:
    events = dev.events_named("lines-lost")
    assert len(events) == 1, [e.raw for e in events]
    return {k: int(v) for k, v in events[0].fields.items()}


@pytest.mark.safety("SR-11")
def test_a_host_that_stops_reading_never_stalls_the_loop(station, rig):
    """20 s of status lines every 50 ms (far more than the pty holds) into a
    host that does not read: the loop keeps its period, nothing resets, the
    dropped status lines are counted, and the link works again at once."""
    station.standby()
    dev = station.device
    dev.request("SET status_ms=50")
    t0_ms = rig.now_us() // 1000
    hung = hung_host(station, 20_000)
    assert hung["loops"] >= 20_000_000 // CONTROL_PERIOD_US
    assert hung["loop_max_us"] <= CONTROL_PERIOD_US
    assert_never_reset(station)
    n = lost(dev)
    assert n["st"] > 0 and n["pulse"] == 0 and n["other"] == 0
    assert dev.request("HB").kind == "ok"
    times = [int(s.fields["t"]) for s in dev.status]
    assert times[-1] >= t0_ms + 20_000 - 50  # the newest status got through
    assert len(times) + n["st"] == (times[-1] - times[0]) // 50 + 1  # every line sent or counted


@pytest.mark.safety("SR-11")
def test_events_that_matter_survive_a_hung_host_during_emission(station, rig):
    """A whole scan phase while the host does not read: status lines and then
    pulse events are dropped, never the phase and session events."""
    station.emitting(motion=Motion(0).sweeps(100, 80, 40))
    dev = station.device
    dev.request("SET status_ms=50")
    hung = hung_host(station, 20_000)
    assert hung["loop_max_us"] <= CONTROL_PERIOD_US
    assert_never_reset(station)
    assert dev.events_named("phase-done") and dev.events_named("session-done")
    n = lost(dev)
    assert n["pulse"] > 0 and n["st"] > 0 and n["other"] == 0
    reported = len(dev.events_named("pulse"))
    assert reported + n["pulse"] == len(rig.pulses)  # every pulse reported or counted


@pytest.mark.safety("SR-11")
@pytest.mark.safety("SR-12")
def test_a_ver_flood_into_a_hung_host_does_not_reset(station, rig):
    station.standby()
    dev = station.device
    hung_host(station, 1000, b"VER\n" * 1000)
    assert_never_reset(station)
    n = lost(dev)
    assert n["other"] > 0
    vers = [r for r in dev.t.log if r[1] == "<" and r[2].startswith(b"ok - HILT")]
    assert len(vers) + n["other"] == 1000 + 1  # + the VER of sync()
    assert dev.request("HB").kind == "ok"


@pytest.mark.safety("SR-11")
@pytest.mark.safety("SR-12")
def test_huge_lines_into_a_hung_host_are_answered_once_each(station, rig):
    station.standby()
    dev = station.device
    dev.request("SET status_ms=50")
    big = b"PADD " + b"x" * (512 * 1024) + b"\n"
    hung = hung_host(station, 20_000, big + big)
    assert hung["loop_max_us"] <= CONTROL_PERIOD_US
    assert_never_reset(station)
    too_long = [r for r in dev.t.log if r[1] == "<" and r[2].startswith(b"er - E03")]
    assert len(too_long) == 2
    assert lost(dev)["other"] == 0
    assert dev.request("HB").kind == "ok"


_ACTIONS = hs.one_of(
    hs.tuples(hs.just("hold")),
    hs.tuples(hs.just("resume")),
    hs.tuples(hs.just("adv"), hs.integers(1, 20_000)),
    hs.tuples(hs.just("flood"), hs.integers(1, 1000)),
    hs.tuples(hs.just("long"), hs.sampled_from([161, 4096, 65536, 512 * 1024])),
    hs.tuples(hs.just("status"), hs.integers(1, 200)),
    hs.tuples(hs.just("garbage"), hs.binary(max_size=300)),
)


@pytest.mark.safety("SR-11")
@pytest.mark.safety("SR-12")
@target_settings(max_examples=12)
@given(actions=hs.lists(_ACTIONS, min_size=1, max_size=8), hung_from_start=hs.booleans())
def test_fuzzed_input_with_hung_host_phases_never_resets(fresh_target, actions, hung_from_start):
    """Floods, huge lines, status bytes and garbage, with the host reading or
    not, while the status stream runs: no reset, no cut line, the program kept."""
    with fresh_target() as (device, rig):
        st = Station(device, rig)
        st.standby()
        st.load()
        device.request("SET status_ms=50")
        before = device.request("PROG").text
        held = hung_from_start
        if held:
            device.t.hold_reading()
        for act in actions:
            kind = act[0]
            if kind == "hold" and not held:
                device.t.hold_reading()
                held = True
            elif kind == "resume" and held:
                device.t.resume_reading()
                held = False
            elif kind == "adv":
                rig.advance(act[1])
            elif kind == "flood":
                device.t.write(b"VER\n" * act[1])
            elif kind == "long":
                device.t.write(b"x" * act[1] + b"\n")
            elif kind == "status":
                device.t.write(b"?" * act[1])
            elif kind == "garbage":
                device.t.write(act[1].replace(b"!", b""))
        rig.advance(300)
        device.t.resume_reading()
        device.t.write(b"\n")  # ends any garbage line left open
        device.hello()  # a framed reply: every line before it has been read
        device.forget_replies()
        assert [what for _, what in rig.resets if what != "boot"] == [], rig.resets  # a rig may not see the boot
        assert len(device.events_named("boot")) == 1 and not device.events_named("exception")
        assert device.bad_lines == []
        assert device.request("PROG").text == before
        assert device.query_status()["state"] == "STANDBY"


@pytest.mark.needs_fault_injection
@pytest.mark.needs_virtual_clock  # the cut falls inside a line only if time stands still meanwhile
def test_a_line_the_cut_link_broke_off_does_not_hide_the_next_reply(station, rig):
    """The host stops reading until the port is full and the device has a
    status line half written; the link is cut (the rest of that line is lost)
    and restored. The next reply joins the fragment on the wire: the host
    drops the fragment and still takes the reply (docs/protocol.md)."""
    station.standby()
    dev = station.device
    dev.t.hold_reading()
    for _ in range(40):  # 800 status lines, far more than the port and the queue hold
        dev.t.write(b"?" * 20)
        rig.advance(10)
    rig.host_link(False)
    rig.advance(100)  # the rest of the half-written line goes to the void
    rig.host_link(True)
    dev.t.resume_reading()
    assert dev.request("HB").kind == "ok"
    assert len(dev.bad_lines) == 1 and "bad checksum" in dev.bad_lines[0]  # the cut fell inside a line
    assert dev.query_status()["state"] == "STANDBY"


@pytest.mark.parametrize("read_before_the_wait", [False, True])
def test_a_torn_reply_is_asked_for_again_and_the_command_acts_once(station, read_before_the_wait):
    """The reply to PADD arrives torn (as when the link fails inside it): the
    host drops it and sends the frame again, same number and words; the device
    resends its reply and does not append the phase twice (docs/protocol.md).
    Also when the torn reply is read before the request starts waiting (the
    reader thread ran first)."""
    station.standby()
    dev = station.device
    dev.request("PCLR")
    put = dev.t.lines.put  # where the serial reader hands over each line
    torn = []

    def tear_first_reply(raw):
        if raw.startswith(b"ok ") and not torn:
            torn.append(raw)
            raw = raw[:-4]  # its end lost on the wire
        put(raw)

    dev.t.lines.put = tear_first_reply
    if read_before_the_wait:
        write = dev.t.write

        def write_then_let_the_reader_run(data):
            write(data)
            dev.wait(lambda: dev.bad_lines, what="the torn reply read")
            dev.t.write = write

        dev.t.write = write_then_let_the_reader_run
    reply = dev.request("PADD " + PHASE)
    assert len(torn) == 1 and reply.raw == torn[0].decode()  # the same reply, resent
    assert len(dev.bad_lines) == 1
    assert dev.request("PROG").fields["phases"] == "1"
