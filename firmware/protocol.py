"""Line intake: bytes from the serial link -> real-time flags and framed lines.

Real-time bytes act the moment they arrive, even in the middle of a line, and
never enter a line (GRBL's `!` and `?`); each byte is its own request. Lines
are bounded: an oversized line costs O(1) per byte, is answered with
E_TOO_LONG once and skipped up to its newline (SR-12).

Frame (docs/protocol.md):  N<seq> <CMD> [args...]*<XX>
  XX is the XOR of every byte from `N` to before '*', two hex digits. Spaces
  around a line are not part of it.
A line without `*` whose first word is not N<digits> is unframed: accepted
for read-only commands only, so a person can type STATUS into a serial
terminal at bring-up.
"""
from micropython import const

import codes

RT_STOP = const(0x21)  # '!'  stop emission now
RT_STATUS = const(0x3F)  # '?'  status report now
MAX_LINE = const(160)  # bytes between newlines, checksum included
_LF = const(10)
_CR = const(13)
_SP = const(32)


def checksum(data, end):
    """XOR of data[:end]. Iterating a view takes about half the time of
    indexing: every line out (pulse events too) and every frame in runs it."""
    c = 0
    for b in memoryview(data)[:end]:
        c ^= b
    return c


class Intake:
    def __init__(self, on_line, on_error):
        self._buf = bytearray(MAX_LINE)
        self._n = 0
        self._overflow = False
        self.on_line = on_line  # (seq or -1, words) -> None
        self.on_error = on_error  # (seq or -1, code, detail) -> None
        self.stops = 0  # real-time bytes in the last chunk, by kind
        self.statuses = 0

    def realtime(self, data, n, start=0):
        """First pass over a chunk, data[start:n]: count its stop and status
        bytes (each is a request of its own); returns how many real-time
        bytes it carries."""
        stops = statuses = 0
        for i in range(start, n):
            b = data[i]
            if b == RT_STOP:
                stops += 1
            elif b == RT_STATUS:
                statuses += 1
        self.stops = stops
        self.statuses = statuses
        return stops + statuses

    def lines(self, data, n):
        """Second pass: assemble lines and hand each complete one on."""
        buf = self._buf
        for i in range(n):
            b = data[i]
            if b == RT_STOP or b == RT_STATUS or b == _CR:
                continue
            if b != _LF:
                if self._n < MAX_LINE:
                    buf[self._n] = b
                    self._n += 1
                else:
                    self._overflow = True
                continue
            if self._overflow:
                self.on_error(-1, codes.E_TOO_LONG, "max %d bytes" % MAX_LINE)
            elif self._n:
                self._frame(bytes(buf[: self._n]))
            self._n = 0
            self._overflow = False

    def _frame(self, line):
        for b in line:
            if b < 0x20 or b > 0x7E:
                return self.on_error(-1, codes.E_SYNTAX, "byte 0x%02X" % b)
        start = 0
        end = len(line)
        while start < end and line[start] == _SP:
            start += 1
        while end > start and line[end - 1] == _SP:
            end -= 1
        if start == end:
            return self.on_line(-1, [])  # a line of spaces
        if start or end < len(line):
            line = line[start:end]
        text = line.decode()
        star = text.rfind("*")
        # N<digits> opens a frame; NEWSESSION typed at a terminal does not.
        framed = len(text) > 1 and text[0] == "N" and "0" <= text[1] <= "9"
        if star < 0:
            if framed:
                return self.on_error(-1, codes.E_SYNTAX, "framed line without *checksum")
            return self.on_line(-1, text.split())
        if text[0] != "N":
            return self.on_error(-1, codes.E_SYNTAX, "checksum without N<seq>")
        head = text[1:star].split()
        if not head or not head[0].isdigit() or len(head[0]) > 5:
            return self.on_error(-1, codes.E_SYNTAX, "N<seq> must be 0..99999")
        seq = int(head[0])
        want = checksum(line, star)
        got = text[star + 1 :]
        if len(got) != 2 or got.upper() != "%02X" % want:
            return self.on_error(seq, codes.E_CHECKSUM, "want %02X, got %s" % (want, got[:8]))
        if len(head) < 2:
            return self.on_error(seq, codes.E_SYNTAX, "no command")
        self.on_line(seq, head[1:])
