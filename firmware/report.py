"""Every outgoing line goes through here, so the wire format lives in one place.

  ok <seq> [payload]*XX            a command was done
  er <seq> E<code> <text>[: detail]*XX   refused; nothing changed (a framed refusal
                                   still takes its sequence number, see protocol.md)
  st <payload>*XX                  status (periodic, on '?', or on request)
  ev <t_ms> <name> [payload]*XX    something happened (fault, phase done, ...)
<seq> is '-' for an unframed line. Never called from the pulse path: writes to
a USB-CDC link can block.
"""
import codes
from protocol import checksum


class Reporter:
    def __init__(self, link):
        self._link = link
        self.keep = False  # set while an accepted frame is being answered
        self.last = b""  # that answer, resent for a repeated sequence number

    def _send(self, text):
        data = text.encode()
        out = b"".join((data, b"*%02X\n" % checksum(data, len(data))))
        self._link.write(out)
        return out

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
        self._link.write(self.last)

    def status(self, payload):
        self._send("st " + payload)

    def event(self, t_ms, name, payload=""):
        line = "ev %d %s" % (t_ms, name)
        self._send(line + " " + payload if payload else line)
