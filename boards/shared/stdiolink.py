"""The serial line over the board's USB-CDC (sys.stdin / sys.stdout).

readinto() never blocks: it polls stdin with a zero timeout and copies one
byte at a time through a preallocated 1-byte buffer (stdin's own readinto
would wait for the whole buffer). It allocates nothing per call.

write() never blocks either (SR-11): the port's stdout write waits for room
(up to its CDC timeout, hundreds of ms on rp2) when a host is attached but
does not read, so it writes one byte at a time and only while a zero-timeout
poll says stdout can take one, at most _TX_MAX bytes per call to bound the
call's time (about 64 polls and writes: estimated, not measured on a board).
It returns the bytes taken; the core's report queue keeps the rest.
"""
import select
import sys
from micropython import const

_TX_MAX = const(64)


class StdioLink:
    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(sys.stdout, select.POLLOUT)
        self._wipoll = self._wpoll.ipoll  # bound once, for write()'s per-byte loop
        self._put = self._out.write
        self._one = bytearray(1)
        self._tx = bytearray(1)

    def any(self):
        """True when at least one byte waits (no allocation: ipoll reuses itself)."""
        for _ in self._poll.ipoll(0):
            return True
        return False

    def readinto(self, buf):
        n = 0
        one = self._one
        while n < len(buf) and self.any():
            if not self._in.readinto(one):
                break
            buf[n] = one[0]
            n += 1
        return n

    def write(self, buf):
        n = 0
        end = min(len(buf), _TX_MAX)
        tx = self._tx
        ipoll = self._wipoll  # per byte: no method call, no attribute lookups
        out = self._put
        while n < end:
            for _ in ipoll(0):
                break
            else:
                break  # stdout takes no byte now
            tx[0] = buf[n]
            if not out(tx):
                break
            n += 1
        return n

    def write_all(self, buf):
        """Blocking: for the bench rig's own lines (boards/rig_pico), whose host always reads."""
        self._out.write(buf)
