"""Host-side framing: what the client sends and how it reads the device."""
import pytest

from handpiece.frames import FrameError, checksum, frame, parse


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
