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
oldest pulse event, then the oldest of the rest; a line already half on the wire is always finished.
What was dropped is counted and reported in one `lines-lost` event as soon as
the queue has drained. Never called from the pulse path.
"""
from micropython import const

import codes
from protocol import checksum

OUT_BYTES = const(2048)  # queued output, bytes; about 180 ms of a 115200 baud line
_ST = const(0)  # drop ranks: the lowest rank goes first
_PULSE = const(1)
_OTHER = const(2)


class Reporter:
    def __init__(self, link):
        self._link = link
        self.keep = False  # set while an accepted frame is being answered
        self.last = b""  # that answer, resent for a repeated sequence number
        self._q = []  # lines waiting, oldest first
        self._rank = []  # their drop ranks
        self._bytes = 0  # bytes in _q
        self._off = 0  # bytes of _q[0] already written
        self.lost = [0, 0, 0]  # lines dropped since the last report, by rank

    def _line(self, text):
        data = text.encode()
        return b"".join((data, b"*%02X\n" % checksum(data, len(data))))

    def _send(self, text, rank=_OTHER):
        out = self._line(text)
        self._queue(out, rank)
        return out

    def _queue(self, out, rank):
        q = self._q
        while self._bytes + len(out) > OUT_BYTES:
            first = 1 if self._off else 0  # a line half written is finished, never dropped
            low = -1
            for i in range(first, len(q)):
                if low < 0 or self._rank[i] < self._rank[low]:
                    low = i
            if low < 0 or self._rank[low] > rank:
                self.lost[rank] += 1  # the new line is the least useful
                return
            self._drop(low)
        q.append(out)
        self._rank.append(rank)
        self._bytes += len(out)

    def _drop(self, i):
        self.lost[self._rank[i]] += 1
        self._bytes -= len(self._q[i])
        self._q.pop(i)
        self._rank.pop(i)

    def pending(self):
        """Bytes waiting to be written."""
        return self._bytes - self._off

    def flush(self, t_ms):
        """Write what the link takes now, never waiting. Once the queue is
        empty after a loss, the loss is reported (and flushed in turn)."""
        q = self._q
        while q:
            head = q[0]
            want = len(head) - self._off
            n = self._link.write(memoryview(head)[self._off:]) or 0
            self._off += n
            if n < want:
                return  # the link is full (or takes a bounded amount per call)
            self._bytes -= len(head)
            self._off = 0
            q.pop(0)
            self._rank.pop(0)
            if not q and (self.lost[0] or self.lost[1] or self.lost[2]):
                lost = self.lost
                self._queue(self._line("ev %d lines-lost st=%d pulse=%d other=%d" % (
                    t_ms, lost[_ST], lost[_PULSE], lost[_OTHER])), _OTHER)
                lost[0] = lost[1] = lost[2] = 0

    def ok(self, seq, payload=""):
        line = "ok %s" % ("-" if seq < 0 else seq)
        self._reply(line + " " + payload if payload else line)

    def err(self, seq, code, detail=""):
        line = "er %s E%02d %s" % ("-" if seq < 0 else seq, code, codes.ERRORS[code])
        self._reply(line + ": " + detail if detail else line)

    def _reply(self, text):
        out = self._send(text)
        if self.keep:
            self.last = out

    def resend(self):
        self._queue(self.last, _OTHER)

    def status(self, payload):
        self._send("st " + payload, _ST)

    def event(self, t_ms, name, payload=""):
        line = "ev %d %s" % (t_ms, name)
        self._send(line + " " + payload if payload else line, _PULSE if name == "pulse" else _OTHER)
