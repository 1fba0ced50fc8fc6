"""Every outgoing line goes through here, so the wire format lives in one place.

  ok <seq> [payload]*XX            a command was done
  er <seq> E<code> <text>[: detail]*XX   refused; nothing changed (a framed refusal
                                   still takes its sequence number, see protocol.md)
  st <payload>*XX                  status (periodic, on '?', or on request)
  ev <t_ms> <name> [payload]*XX    something happened (fault, phase done, ...)
<seq> is '-' for an unframed line.

Lines wait in a bounded queue that flush() hands to the link without ever
waiting (SR-11): a host that stops reading cannot stall the loop. When a line
does not fit, the least useful queued line goes (docs/protocol.md, "Output
queue"): the oldest status line first (a newer one says more), then the
oldest pulse event, then the oldest of the rest; a line already half on the
wire is always finished. What was dropped is counted and reported in one
`lines-lost` event as soon as the queue has drained. The rank is read off the
line itself (one list, no parallel table). Never called from the pulse path.
"""
from micropython import const

import codes
from protocol import checksum

OUT_BYTES = const(2048)  # queued output, bytes; about 180 ms of a 115200 baud line

# The wire format of every payload the device sends, in one place
# (docs/protocol.md lists the same names and fields; a host test compares them).
# Event name -> payload format.
EVENTS = {
    "boot": "fw=%s proto=%d board=%s reset=%s",
    "state": "%s>%s",
    "fault": "F%02d %s: %s",
    "pulse": "ph=%d pos=%d uj=%d",
    "pulse-lost": "n=%d",
    "phase-done": "ph=%d pulses=%d e_mj=%d short_mj=%d under_mm=%s skipped=%d",
    "point-done": "ph=%d point=%d",
    "point-abort": "ph=%d point=%d moved_counts=%d undelivered=%d",
    "stop": "%s",
    "speed-high": "v_mm_s=%d",
    "speed-low": "v_mm_s=%d",
    "speed-ok": "v_mm_s=%d",
    "session-done": "e_mj=%d",
    "exception": "%s",
    "lines-lost": "st=%d pulse=%d other=%d",
}
# The status fields, in order (`st` lines and the STATUS reply).
STATUS = "t=%d state=%s open=%s foot=%d fault=%d ph=%d pulses=%d e_mj=%d under_mm=%s v_mm_s=%d"
# Command -> the payload of its `ok` reply, where it has fields.
REPLIES = {
    "HELLO": "HILT fw=%s proto=%d board=%s",
    "GET": "status_ms=%d sup_ms=%d ready_delay_ms=%d counts_per_mm=%d",
    "PROG": "valid=%d phases=%d crc=%08X total_mj=%d",
    "SET": "%s=%d",
    "PADD": "phase=%d pulses=%d pulse_uj=%d period_us=%d",
    "PEND": "crc=%08X total_mj=%d resumed=%d phase=%d delivered_mj=%d",
    "NEWSESSION": "session closed",
    "READY": "delay_ms=%d",
}
# One item of a name=value list reply (LIMITS: every hard limit, in limits.KEYS order).
ITEM = "%s=%d"
# A whole pulse event line, bytes, before its checksum: pulse() formats it in one step.
_PULSE = b"ev %d pulse " + EVENTS["pulse"].encode()


def mm(counts, counts_per_mm):
    """Encoder counts as the "mm.uuu" text that status and events carry."""
    um = counts * 1000 // counts_per_mm
    return "%d.%03d" % (um // 1000, um % 1000)


def _rank(line):
    """Drop rank, lowest dropped first: 0 status (`st`), 1 pulse event
    (`ev <t_ms> pulse`, t_ms at most 7 digits), 2 the rest."""
    if line[0] == 0x73:  # 's'
        return 0
    return 1 if line[0] == 0x65 and line.find(b" pulse ", 3, 20) > 0 else 2


class Reporter:
    def __init__(self, link):
        self._link = link
        self.keep = False  # set while an accepted frame is being answered
        self.last = b""  # that answer, resent for a repeated sequence number
        self._q = []  # lines waiting, oldest first
        self._bytes = 0  # bytes in _q
        self._off = 0  # bytes of _q[0] already written
        self.lost = [0, 0, 0]  # lines dropped since the last report, by rank

    def _send(self, text):
        data = text.encode()
        out = b"".join((data, b"*%02X\n" % checksum(data, len(data))))
        self._queue(out)
        return out

    def _queue(self, out, rank=-1):
        lines = self._q
        if rank < 0:
            rank = _rank(out)
        while self._bytes + len(out) > OUT_BYTES:
            low = -1
            low_rank = 3
            for i in range(1 if self._off else 0, len(lines)):  # a line half written is finished
                r = _rank(lines[i])
                if r < low_rank:
                    low, low_rank = i, r
            if low_rank > rank:
                self.lost[rank] += 1  # the new line is the least useful
                return
            self.lost[low_rank] += 1
            self._bytes -= len(lines.pop(low))
        lines.append(out)
        self._bytes += len(out)

    def flush(self, t_ms):
        """Write what the link takes now, never waiting. Once the queue is
        empty after a loss, the loss is reported (and flushed in turn)."""
        lines = self._q
        lost = self.lost
        while lines:
            head = lines[0]
            want = len(head) - self._off
            n = self._link.write(memoryview(head)[self._off:] if self._off else head) or 0
            self._off += n
            if n < want:
                return  # the link is full (or takes a bounded amount per call)
            self._bytes -= len(head)
            self._off = 0
            lines.pop(0)
            if not lines and (lost[0] or lost[1] or lost[2]):
                self.ev(t_ms, "lines-lost", lost[0], lost[1], lost[2])
                lost[0] = lost[1] = lost[2] = 0

    def ok(self, seq, text=""):
        line = "ok %s" % ("-" if seq < 0 else seq)
        self._reply(line + " " + text if text else line)

    def err(self, seq, code, text=""):
        line = "er %s E%02d %s" % ("-" if seq < 0 else seq, code, codes.ERRORS[code])
        self._reply(line + ": " + text if text else line)

    def _reply(self, text):
        out = self._send(text)
        if self.keep:
            self.last = out

    def resend(self):
        if self.last:
            self._queue(self.last)

    def status(self, text):
        self._send("st " + text)

    def event(self, t_ms, name, text=""):
        line = "ev %d %s" % (t_ms, name)
        self._send(line + " " + text if text else line)

    def pulse(self, t_ms, ph, pos, uj):
        """The `pulse` event: the line ev() would make, in a third of its time
        (one format, no text to encode, its rank known), for the loop that
        reports a pulse."""
        data = _PULSE % (t_ms, ph, pos, uj)
        self._queue(data + b"*%02X\n" % checksum(data, len(data)), 1)

    def ev(self, t_ms, name, *args):
        """An event, its payload formatted from EVENTS."""
        self.event(t_ms, name, EVENTS[name] % args)

    def items(self, seq, pairs):
        """The `ok` reply of a name=value list, each item formatted from ITEM."""
        self.ok(seq, " ".join(ITEM % kv for kv in pairs))

    def done(self, seq, cmd, *args):
        """The `ok` reply of `cmd`, its payload formatted from REPLIES."""
        self.ok(seq, REPLIES[cmd] % args)
