"""The simulated serial link: the process's stdin/stdout."""
import sys


class Link:
    """The process's stdin/stdout, like USB-CDC on a board. The host hands over
    a pty master set non-blocking, so a read returns what is there (None when
    nothing) and a write takes what fits (None when the pty is full). In a
    terminal (a blocking tty) VMIN=0 gives the same reads, but writes block.

    When the host closes its side (the pty's reads fail with EIO, poll says
    POLLHUP) the link is `closed`: readinto() returns -1, which the firmware
    takes as a lost link, and a write takes nothing (the firmware's queue
    keeps the newest lines for the next host). The firmware keeps running;
    the board notices when a host opens the pty again (Clock._watch_link, simclock.py)."""

    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self.up = True
        self.closed = False
        self.full = False  # the last write was short: Board.wait() wakes when it drains
        try:
            import termios

            termios.setraw(0)
            attr = termios.tcgetattr(0)
            attr[6][6] = 0  # VMIN: a read returns what is there, even nothing
            attr[6][5] = 0  # VTIME
            termios.tcsetattr(0, termios.TCSANOW, attr)
        except Exception:  # noqa: BLE001 - not a tty: the host made it non-blocking
            pass

    def readinto(self, buf):
        if self.closed:
            return -1
        try:
            n = self._in.readinto(buf) or 0
        except OSError:  # EIO: no process has the pty's other side open
            self.closed = True
            return -1
        return n if self.up else 0

    def write(self, buf):
        """Non-blocking: the bytes taken from the front of buf, 0 when the pty
        is full or the host has closed it. With the link cut (rig `link 0`) the
        bytes are taken and lost on the wire."""
        if not self.up:
            return len(buf)
        if self.closed:
            return 0
        try:
            n = self._out.write(buf) or 0
        except OSError:  # EIO: the host has closed its side
            self.closed = True
            return 0
        self.full = n < len(buf)
        return n

