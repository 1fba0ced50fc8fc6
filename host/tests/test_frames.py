"""Host-side framing: what the client sends and how it reads the device."""
import pytest

from handpiece.frames import FrameError, checksum, frame, parse, recover


def test_frame_carries_sequence_and_checksum():
    data = frame(7, "READY")
    body, _, cs = data.rstrip(b"\n").rpartition(b"*")
    assert body == b"N7 READY" and int(cs, 16) == checksum(body)


def line(text: str) -> bytes:
    return text.encode() + b"*%02X" % checksum(text.encode())


def test_parse_reply_error_status_event():
    ok = parse(line("ok 4 phase=0 pulses=27"))
    assert (ok.kind, ok.seq, ok.fields["pulses"]) == ("ok", 4, "27")
    er = parse(line("er - E08 needs a framed line: READY"))
    assert (er.kind, er.seq, er.code) == ("er", None, 8) and er.text.endswith("READY")
    ev = parse(line("ev 2947 phase-done ph=0 pulses=27"))
    assert (ev.t_ms, ev.name, ev.fields["ph"]) == (2947, "phase-done", "0")
    assert parse(line("st t=5 state=READY")).fields["state"] == "READY"


@pytest.mark.parametrize("raw", [b"ok 1", b"ok 1*00", b"\xff\xfe*00", b"zz 1*" + b"%02X" % checksum(b"zz 1")])
def test_bad_device_lines_are_rejected(raw):
    with pytest.raises(FrameError):
        parse(raw)


def test_frames_refuse_what_the_device_could_not_take():
    with pytest.raises(ValueError, match="cannot send '!'"):
        frame(1, "PADD name=wow!")
    with pytest.raises(ValueError, match="over the device's 160"):
        frame(1, "PADD " + "x" * 200)


def test_a_broken_off_line_gives_up_the_whole_line_it_joined():
    joined = b"st t=100 state=STANDBY open=- foot=0 fault=0 ph" + line("ok 2 state=READY")
    with pytest.raises(FrameError, match="bad checksum"):
        parse(joined)
    got = recover(joined)
    assert (got.kind, got.seq, got.fields) == ("ok", 2, {"state": "READY"})
    assert recover(b"ev 12" + line("er - E05 unknown command: X")).code == 5


def test_no_line_is_recovered_where_it_cannot_be_told():
    # "ok 1 x=p" XORs to 0, so "ok 1 x=pok 2*16" checks as well as "ok 2*16":
    # two candidates, neither taken
    assert checksum(b"ok 1 x=p") == 0
    assert recover(b"st t=1 sta" + b"ok 1 x=p" + line("ok 2")) is None
    assert recover(b"st t=1 sta" + b"ok 2*00") is None  # the rest is no valid line
    assert recover(b"garbage") is None


def test_a_torn_line_that_checks_by_chance_is_refused_not_a_crash():
    with pytest.raises(FrameError, match="malformed"):
        parse(line("ev 12ok - t=5"))
