# Line intake: real-time bytes, framing, checksums, bounded lines (SR-12).
import codes
from protocol import MAX_LINE, Intake, checksum


def framed(seq, text):
    body = ("N%d %s" % (seq, text)).encode()
    return body + b"*%02X\n" % checksum(body, len(body))


class Sink:
    def __init__(self):
        self.lines = []
        self.errors = []
        self.intake = Intake(lambda s, w: self.lines.append((s, w)), lambda s, c, d: self.errors.append((s, c)))

    def feed(self, data):
        buf = bytearray(data)
        n = self.intake.realtime(buf, len(buf))
        self.intake.lines(buf, len(buf))
        return n


def test_framed_line_parses():
    s = Sink()
    s.feed(framed(7, "READY"))
    assert s.lines == [(7, ["READY"])] and not s.errors


def test_unframed_line_is_marked():
    s = Sink()
    s.feed(b"STATUS\r\n")
    assert s.lines == [(-1, ["STATUS"])]


def test_realtime_bytes_act_mid_line_and_leave_it_intact():
    s = Sink()
    data = framed(3, "PCLR")
    assert s.feed(data[:4] + b"!?" + data[4:]) == 2
    assert (s.intake.stops, s.intake.statuses) == (1, 1)
    assert s.lines == [(3, ["PCLR"])] and not s.errors


def test_each_realtime_byte_is_its_own_request():
    s = Sink()
    assert s.feed(b"??!?!!!") == 7
    assert (s.intake.stops, s.intake.statuses) == (4, 3)
    assert s.feed(b"VER\n") == 0 and (s.intake.stops, s.intake.statuses) == (0, 0)


def test_spaces_around_a_frame_are_not_part_of_it():
    s = Sink()
    s.feed(b"  " + framed(4, "HB")[:-1] + b"   \n")
    assert s.lines == [(4, ["HB"])] and not s.errors


def test_a_command_starting_with_n_is_not_a_frame():
    s = Sink()
    s.feed(b"NEWSESSION\n")
    assert s.lines == [(-1, ["NEWSESSION"])] and not s.errors


def test_bad_checksum_is_refused():
    s = Sink()
    data = bytearray(framed(3, "READY"))
    data[-3] ^= 0x01  # corrupt one hex digit of the checksum
    s.feed(bytes(data))
    assert s.lines == [] and s.errors == [(3, codes.E_CHECKSUM)]


def test_corrupt_body_is_refused():
    s = Sink()
    data = bytearray(framed(3, "READY"))
    data[4] = ord("X")
    s.feed(bytes(data))
    assert s.lines == [] and s.errors[0][1] == codes.E_CHECKSUM


def test_oversized_line_is_one_error_and_the_next_line_works():
    s = Sink()
    s.feed(b"A" * (MAX_LINE + 50) + b"\n" + framed(1, "HB"))
    assert s.errors == [(-1, codes.E_TOO_LONG)]
    assert s.lines == [(1, ["HB"])]


def test_a_huge_line_in_small_reads_is_one_error():
    s = Sink()
    chunk = b"x" * 64
    for _ in range(512 * 1024 // 64):  # 512 KiB, as the loop reads it
        s.feed(chunk)
    s.feed(b"\n" + framed(2, "HB"))
    assert s.errors == [(-1, codes.E_TOO_LONG)]
    assert s.lines == [(2, ["HB"])]


def test_garbage_bytes_are_refused():
    s = Sink()
    s.feed(b"\x00\xff\x1b[A\n")
    assert s.lines == [] and s.errors == [(-1, codes.E_SYNTAX)]


def test_line_split_across_reads():
    s = Sink()
    data = framed(12, "PEND 1")
    s.feed(data[:5])
    assert s.lines == []
    s.feed(data[5:])
    assert s.lines == [(12, ["PEND", "1"])]


def test_malformed_frames():
    for data in (b"N12 READY\n", b"READY*00\n", b"Nx READY*00\n", b"N123456 HB*00\n"):
        s = Sink()
        s.feed(data)
        assert s.lines == [] and s.errors and s.errors[0][1] == codes.E_SYNTAX, data
