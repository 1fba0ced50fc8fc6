"""Protocol v1 over the real serial path (a pty on the Unix port, a port on a
board): handshake, status, framing errors. Every bad input gets a specific
error and changes nothing (SR-12)."""
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from handpiece.device import DeviceError
from handpiece.frames import checksum, frame
from handpiece.pytest_plugin import target_settings
from handpiece.strategy import Station

E_CHECKSUM, E_SEQUENCE, E_TOO_LONG, E_SYNTAX, E_UNKNOWN, E_RANGE = 1, 2, 3, 4, 5, 6
E_STATE, E_STRICT, E_HANDSHAKE, E_VERSION, E_PROGRAM = 7, 8, 9, 10, 11
E_ARGUMENT = 15


def snapshot(device):
    """Everything a bad frame must leave as it was."""
    st = device.request("STATUS").fields
    st.pop("t")
    return st, device.request("PROG").text, device.request("GET").text


def expect_refusal(device, data: bytes, code: int, seq=None):
    line = device.send_raw(data) if seq is None else None
    if seq is not None:
        device.t.write(data)
        line = device._reply(seq)
    assert line.kind == "er", line.raw
    assert line.code == code, line.raw
    return line


def test_handshake_reports_versions(device):
    info = device.hello()
    assert info["proto"] == "1"
    assert info["board"]
    assert info["fw"].count(".") == 2


def test_wrong_protocol_version_is_refused(device):
    device.t.write(frame(0, "HELLO 2"))
    line = device._reply(0)
    assert line.kind == "er" and line.code == E_VERSION and "device speaks 1" in line.text


def test_framed_command_needs_handshake(device):
    device.t.write(frame(1, "STATUS"))
    line = device._reply(1)
    assert line.code == E_HANDSHAKE


def test_unframed_read_only_commands_work_for_a_person(device):
    for cmd in (b"VER\n", b"STATUS\r\n", b"LIMITS\n", b"GET\n", b"HELP\n", b"prog\n"):
        assert device.send_raw(cmd).kind == "ok", cmd


def test_status_byte_and_status_command_agree(device):
    device.hello()
    line = device.request_status_byte()
    assert line.fields["state"] == device.request("STATUS").fields["state"] == "STANDBY"


def test_status_stream_at_configured_rate(station, rig):
    station.standby()
    station.device.request("SET status_ms=100")
    station.advance(1000)
    times = [int(s.fields["t"]) for s in station.device.status]
    assert len(times) >= 10
    assert all(b - a == 100 for a, b in zip(times, times[1:]))


@pytest.mark.needs_virtual_clock  # the control period is exact only on a virtual clock
def test_status_stream_keeps_its_rate_when_the_period_is_not_a_whole_number_of_loops(station, rig):
    """55 ms with a 2 ms control loop: each line goes out up to a loop late,
    but the next is due 55 ms after this one was due, so the stream does not
    drift (before, each line came 56 ms after the last)."""
    station.standby()
    station.device.request("SET status_ms=55")
    station.advance(1200)
    times = [int(s.fields["t"]) for s in station.device.status][-20:]
    assert len(times) == 20
    assert all(54 <= b - a <= 56 for a, b in zip(times, times[1:]))
    assert abs((times[-1] - times[0]) - 19 * 55) <= 2


@pytest.mark.safety("SR-12")
@pytest.mark.parametrize("cmd", [b"READY\n", b"PCLR\n", b"RESET\n", b"SET status_ms=100\n", b"HELLO 1\n"])
def test_commands_that_lead_to_emission_need_a_frame(device, cmd):
    device.hello()
    before = snapshot(device)
    line = device.send_raw(cmd)
    assert line.kind == "er" and line.code == E_STRICT
    assert snapshot(device) == before


@pytest.mark.safety("SR-12")
def test_bad_checksum_changes_nothing(station):
    station.standby()
    station.load()
    dev = station.device
    before = snapshot(dev)
    body = f"N{dev.seq + 1} PCLR".encode()
    bad = body + b"*%02X\n" % (checksum(body) ^ 0x55)
    line = expect_refusal(dev, bad, E_CHECKSUM, seq=dev.seq + 1)
    assert "want" in line.text
    assert snapshot(dev) == before


@pytest.mark.safety("SR-12")
def test_sequence_gap_is_refused_and_changes_nothing(station):
    station.standby()
    station.load()
    dev = station.device
    before = snapshot(dev)
    expected = dev.seq + 1
    line = expect_refusal(dev, frame(expected + 5, "PCLR"), E_SEQUENCE, seq=expected + 5)
    assert f"expected {expected}" in line.text
    assert snapshot(dev) == before


@pytest.mark.safety("SR-12")
def test_repeated_frame_is_answered_not_redone(station):
    """The host missed a reply and sends the same frame again: the device
    answers it again and does not add a second phase, even with unframed
    reads in between."""
    station.standby()
    dev = station.device
    dev.request("PCLR")
    padd = ("PADD mode=scan width_us=120 power_w=3000 rate_hz=30 energy_j=10 spacing_mm=3.3 "
            "speed_min_mm_s=20 speed_max_mm_s=150")
    first = dev.request(padd)
    dev.send_raw(b"VER\n")
    dev.t.write(frame(dev.seq, padd))  # the same sequence number again
    again = dev._reply(dev.seq)
    assert again.raw == first.raw
    assert dev.request("PROG").fields["phases"] == "1"


@pytest.mark.safety("SR-12")
def test_bad_hello_keeps_the_handshake(station):
    station.standby()
    dev = station.device
    dev.t.write(frame(dev.seq + 1, "HELLO 7"))
    assert dev._reply(dev.seq + 1).code == E_VERSION
    assert dev.request("HB").kind == "ok"  # the sequence goes on from before


@pytest.mark.safety("SR-12")
@pytest.mark.parametrize("junk", [
    b"\x00\x01\x02\xff\n",
    b"\x1b[A\x1b[B\n",
    b"N12 READY\n",  # framed without a checksum
    b"READY*41\n",  # checksum without a sequence number
    b"Nzz READY*00\n",
    b"STATUS \xc3\xa9\n",  # valid UTF-8, but not printable ASCII
])
def test_garbage_gets_a_syntax_error_and_changes_nothing(station, junk):
    station.standby()
    station.load()
    dev = station.device
    before = snapshot(dev)
    line = dev.send_raw(junk)
    assert line.kind == "er" and line.code == E_SYNTAX, line.raw
    assert snapshot(dev) == before


@pytest.mark.safety("SR-12")
def test_frame_without_a_command_is_refused(station):
    station.standby()
    dev = station.device
    before = snapshot(dev)
    seq = dev.seq + 1
    body = b"N%d " % seq
    line = expect_refusal(dev, body + b"*%02X\n" % checksum(body), E_SYNTAX, seq=seq)
    assert "no command" in line.text
    assert snapshot(dev) == before


@pytest.mark.safety("SR-12")
def test_oversized_line_is_refused_and_the_link_recovers(station):
    station.standby()
    dev = station.device
    before = snapshot(dev)
    line = dev.send_raw(b"PADD " + b"x" * 400 + b"\n")
    assert line.code == E_TOO_LONG and "max 160 bytes" in line.text
    assert snapshot(dev) == before
    assert dev.request("HB").kind == "ok"


@pytest.mark.safety("SR-12")
def test_truncated_frame_is_refused(station):
    station.standby()
    dev = station.device
    before = snapshot(dev)
    whole = frame(dev.seq + 1, "PCLR")
    dev.t.write(whole[: len(whole) // 2])  # the cable was pulled mid-frame...
    line = dev.send_raw(b"\n")  # ...and the next newline ends it
    assert line.kind == "er" and line.code in (E_SYNTAX, E_CHECKSUM)
    assert snapshot(dev) == before


@pytest.mark.safety("SR-12")
def test_unknown_command_is_named(station):
    station.standby()
    before = snapshot(station.device)
    with pytest.raises(DeviceError) as e:
        station.device.request("FIRE now")
    assert e.value.code == E_UNKNOWN and "FIRE" in e.value.text
    assert snapshot(station.device) == before  # and the sequence goes on


@pytest.mark.safety("SR-12")
def test_refused_frames_keep_the_sequence_in_step(station):
    """After every kind of refusal the client's next frame is accepted."""
    station.standby()
    dev = station.device
    for text, code in (("FIRE", E_UNKNOWN), ("SET status_ms=1", E_RANGE), ("READY", E_PROGRAM),
                       ("HELLO 9", E_VERSION)):
        with pytest.raises(DeviceError) as e:
            dev.request(text)
        assert e.value.code == code
        assert dev.request("HB").kind == "ok"
    body = f"N{dev.seq + 1} HB".encode()
    dev.t.write(body + b"*%02X\n" % (checksum(body) ^ 1))
    assert dev._reply(dev.seq + 1).code == E_CHECKSUM
    assert dev.request("HB").kind == "ok"


@pytest.mark.safety("SR-12")
@pytest.mark.parametrize("setting,detail", [
    ("status_ms=5", "status_ms 0 or 50..10000"),
    ("sup_ms=900", "sup_ms 0 or 50..500"),
    ("status_ms=-1", "whole number"),
    ("power_w_max=5000", "setting power_w_max"),
])
def test_out_of_range_settings_are_refused(station, setting, detail):
    station.standby()
    before = snapshot(station.device)
    with pytest.raises(DeviceError) as e:
        station.device.request(f"SET {setting}")
    assert detail in e.value.text
    assert snapshot(station.device) == before


@pytest.mark.safety("SR-12")
def test_ctrl_c_in_the_stream_is_data_not_an_interrupt(station):
    station.standby()
    line = station.device.send_raw(b"\x03\x03\n")
    assert line.code == E_SYNTAX
    assert station.device.request("HB").kind == "ok"  # firmware still alive


def test_device_lines_all_carry_valid_checksums(station, rig):
    station.emitting()
    station.advance(500)
    station.device.request("STATUS")
    assert station.device.bad_lines == []


def test_blank_and_space_lines_are_ignored(station):
    station.standby()
    dev = station.device
    dev.t.write(b"\n   \n \r\n\r\n")
    assert dev.request("HB").kind == "ok"
    assert not [line for _, d, line in dev.t.log if d == "<" and line.startswith(b"er")]
    assert not dev.events_named("boot")[1:] and not dev.events_named("exception")


@pytest.mark.safety("SR-12")
@target_settings(max_examples=60)
@given(lines=hs.lists(hs.one_of(
    hs.binary(max_size=200),
    hs.text(alphabet=hs.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    hs.builds(lambda c, a: f"{c} {a}", hs.sampled_from(
        ["SET", "PADD", "PEND", "READY", "RESET", "PCLR", "HELLO", "STANDBY", "NEWSESSION", "GET", "STATUS"]),
        hs.text(alphabet="=.-_ 0123456789abcdefghijklmnopqrstuvwxyz_", max_size=40)),
), min_size=1, max_size=8))
def test_fuzzed_input_never_crashes_or_arms(fresh_target, lines):
    """Whatever arrives, the firmware keeps running (no restart), stays out of
    READY and keeps its program."""
    with fresh_target() as (device, rig):
        st = Station(device, rig)
        st.standby()
        st.load()
        before = device.request("PROG").text
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode()
            if data.strip().upper().startswith(b"VER"):
                continue  # sync() below tells its VER reply by its text
            seq = device.seq + 1
            body = b"N%d " % seq + data.replace(b"\n", b" ").replace(b"!", b"").replace(b"?", b"")[:120]
            device.t.write(data.replace(b"!", b"") + b"\n")  # as typed: unframed or garbage
            device.t.write(body + b"*%02X\n" % checksum(body))  # as a valid frame
            device.seq = seq
        device.sync()
        device.forget_replies()
        device.hello()
        assert len(device.events_named("boot")) == 1 and not device.events_named("exception")
        words = {(ln if isinstance(ln, bytes) else ln.encode()).split(b" ")[0].upper() for ln in lines}
        state = device.query_status()["state"]
        assert state == "STANDBY" or (state == "READY" and b"READY" in words)
        if not words & {b"PCLR", b"PADD", b"PEND", b"NEWSESSION"}:
            assert device.request("PROG").text == before


# -- conformance with docs/protocol.md and docs/codes.md, as a client written from them sees it

@pytest.mark.safety("SR-12")
def test_an_unframed_command_starting_with_n_is_not_taken_for_a_frame(station):
    station.standby()
    station.load()
    before = snapshot(station.device)
    line = station.device.send_raw(b"NEWSESSION\n")
    assert line.kind == "er" and line.code == E_STRICT and "NEWSESSION" in line.text, line.raw
    assert snapshot(station.device) == before


@pytest.mark.safety("SR-12")
def test_an_unframed_unknown_command_is_named_unknown(device):
    line = device.send_raw(b"FROB\n")
    assert line.kind == "er" and line.code == E_UNKNOWN and "FROB" in line.text, line.raw


@pytest.mark.safety("SR-12")
def test_each_status_byte_is_its_own_request(station):
    station.standby()
    dev = station.device
    dev.t.write(b"???")  # one write, read by the device in one go
    dev.sync()
    assert len(dev.status) == 3


@pytest.mark.safety("SR-12")
def test_each_stop_byte_is_its_own_request(station):
    station.standby()
    dev = station.device
    dev.t.write(b"!!")
    dev.sync()
    assert len(dev.events_named("stop")) == 2


@pytest.mark.safety("SR-12")
@pytest.mark.parametrize("setting,code,detail", [
    ("status_ms=abc", E_RANGE, "status_ms needs a whole number, 0 or 50..10000"),
    ("sup_ms=-5", E_RANGE, "0 or 50..500"),
    ("=5", E_ARGUMENT, "SET name=value"),
    ("status_ms=", E_ARGUMENT, "SET name=value"),
])
def test_set_refusals_carry_the_range_or_the_form(station, setting, code, detail):
    station.standby()
    before = snapshot(station.device)
    with pytest.raises(DeviceError) as e:
        station.device.request(f"SET {setting}")
    assert e.value.code == code and detail in e.value.text, e.value.line
    assert snapshot(station.device) == before


@pytest.mark.safety("SR-12")
@pytest.mark.parametrize("field,value,detail", [
    ("rate_hz", "0", "rate_hz 0 < 10"),
    ("rate_hz", "5", "rate_hz 5 < 10"),  # the device runs 10-40 Hz
    ("power_w", "0", "power_w 0 < 1"),
])
def test_program_refusals_name_the_limit(station, field, value, detail):
    station.standby()
    before = snapshot(station.device)
    words = {"mode": "scan", "width_us": "120", "power_w": "3000", "rate_hz": "30", "energy_j": "10",
             "spacing_mm": "3.3", "speed_min_mm_s": "20", "speed_max_mm_s": "150"}
    words[field] = value
    with pytest.raises(DeviceError) as e:
        station.device.request("PADD " + " ".join(f"{k}={v}" for k, v in words.items()))
    assert e.value.code == E_PROGRAM and detail in e.value.text, e.value.line
    assert snapshot(station.device) == before


@pytest.mark.safety("SR-15")
def test_limits_carry_the_rate_range(device):
    fields = device.send_raw(b"LIMITS\n").fields
    assert fields["rate_hz_min"] == "10" and fields["rate_hz_max"] == "40"


@pytest.mark.safety("SR-12")
def test_a_used_sequence_number_on_another_frame_is_refused(station):
    """N1 HB then N1 PCLR: not a retransmission; refused, nothing cleared."""
    station.standby()
    station.load()
    dev = station.device
    before = snapshot(dev)
    dev.request("HB")
    line = expect_refusal(dev, frame(dev.seq, "PCLR"), E_SEQUENCE, seq=dev.seq)
    assert f"expected {dev.seq + 1}" in line.text
    dev.t.write(frame(dev.seq, "HB"))  # the real retransmission is still answered
    assert dev._reply(dev.seq).kind == "ok"
    assert snapshot(dev) == before


@pytest.mark.safety("SR-12")
@pytest.mark.parametrize("before,after", [(b"", b"  "), (b" ", b""), (b"  ", b" ")])
def test_spaces_around_a_frame_are_ignored(station, before, after):
    station.standby()
    dev = station.device
    seq = dev.seq + 1
    dev.t.write(before + frame(seq, "HB")[:-1] + after + b"\n")
    assert dev._reply(seq).kind == "ok"
    dev.seq = seq
    assert dev.request("HB").kind == "ok"


@pytest.mark.safety("SR-12")
def test_a_malformed_checksum_is_shown_as_received(station):
    station.standby()
    dev = station.device
    seq = dev.seq + 1
    body = f"N{seq} HB".encode()
    line = expect_refusal(dev, body + b"*5\n", E_CHECKSUM, seq=seq)
    assert line.text.endswith("want %02X, got 5" % checksum(body)), line.raw


@pytest.mark.needs_fault_injection
def test_every_request_after_a_cut_link_is_answered(station, rig):
    """Status lines every 50 ms while the link is cut 25 times for 7..56 ms:
    wherever a cut falls (inside a line too, on a board whose USB link cuts
    between packets), the first request after it gets its reply, unframed
    or framed (docs/protocol.md, a line broken off by the link)."""
    station.standby()
    dev = station.device
    dev.request("SET status_ms=50")
    for i in range(25):
        rig.host_link(False)
        rig.advance(7 + 13 * i % 50)
        rig.host_link(True)
        assert dev.query_status()["state"] == "STANDBY"
        assert dev.request("HB").kind == "ok"
