"""The serial line over the board's USB-CDC (sys.stdin / sys.stdout).

readinto() never blocks: it polls stdin with a zero timeout and copies one
byte at a time through a preallocated 1-byte buffer (stdin's own readinto
would wait for the whole buffer). It allocates nothing per call.

write() never blocks either (SR-11): it copies what fits into a bounded ring
(_TX_RING bytes, slice copies, no per-byte Python) and returns the bytes
taken; the core's report queue keeps the rest. The ring goes out in pump(),
which the board's wait loop calls between its checks (softarm.wait): the
port's stdout write waits for room (up to its CDC timeout, hundreds of ms on
rp2) when a host is attached but does not read, so pump() writes a byte at a
time, each only when a zero-timeout poll says stdout can take one. A write that wraps
the ring or fills it allocates a view or two of buf; one that fits whole,
none.
"""
import select
import sys
from micropython import const

_TX_RING = const(256)


class StdioLink:
    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(sys.stdout, select.POLLOUT)
        self._wipoll = self._wpoll.ipoll  # bound once: pump() runs every pass of the wait loop
        self._put = self._out.write
        self._one = bytearray(1)
        self._tx = bytearray(1)
        self._ring = memoryview(bytearray(_TX_RING))
        self._head = 0  # the next byte to send
        self.tx_n = 0  # bytes in the ring, from _head on

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
        """Take what fits of buf into the ring; never waits."""
        n = len(buf)
        free = _TX_RING - self.tx_n
        if n > free:
            n = free
            if not n:
                return 0
            buf = memoryview(buf)[:n]
        ring = self._ring
        t = self._head + self.tx_n
        if t >= _TX_RING:
            t -= _TX_RING
        room = _TX_RING - t  # up to the ring's end
        if n <= room:
            ring[t:t + n] = buf
        else:
            buf = memoryview(buf)
            ring[t:] = buf[:room]
            ring[:n - room] = buf[room:]
        self.tx_n += n
        return n

    def pump(self, most):
        """Send up to `most` ring bytes, each only if stdout takes one now;
        returns how many went. Back to back, so they share USB packets."""
        n = 0
        ring = self._ring
        tx = self._tx
        ipoll = self._wipoll
        put = self._put
        h = self._head
        while n < most and n < self.tx_n:
            for _ in ipoll(0):
                break
            else:
                break  # stdout takes no byte now
            tx[0] = ring[h]
            if not put(tx):
                break
            h = h + 1 if h + 1 < _TX_RING else 0
            n += 1
        self._head = h
        self.tx_n -= n
        return n

    def write_all(self, buf):
        """Blocking: for the bench rig's own lines (boards/rig_pico), whose host always reads."""
        self._out.write(buf)
