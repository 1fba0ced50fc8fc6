"""The serial line over the board's USB-CDC (sys.stdin / sys.stdout).

readinto() never blocks: it polls stdin with a zero timeout and copies one
byte at a time through a preallocated 1-byte buffer (stdin's own readinto
would wait for the whole buffer). It allocates nothing per call.

write() hands the bytes to the port's USB stack. With a host attached that
does not read, the port's CDC write can block for its own timeout (tens of
ms): the core never writes from the pulse path (DESIGN.md section 5).
"""
import select
import sys


class StdioLink:
    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._one = bytearray(1)

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
        self._out.write(buf)
