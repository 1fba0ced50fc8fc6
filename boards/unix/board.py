"""Simulated board for the MicroPython Unix port.

What it models, and how it knows:
- the laser: a one-shot armed pulse fires at the exact moment the encoder
  reaches its target (solved on the piecewise-linear hand path, not sampled),
  or at its time for time-only pulses; only while the enable line is high.
  The photodiode reads each pulse's energy (gain, dropouts, stuck-on light
  injectable). Nothing in hardware gates the laser on the interlocks, so the
  firmware alone is under test;
- the encoder: position in counts from hand keyframes (time, count);
- inputs: interlocks and footswitch as the rig sets them; an interlock
  opening is latched until the firmware's next read, as on the MCU boards;
- the watchdog: bites when not fed for its timeout (virtual or real time):
  the enable line drops and the firmware restarts with RESET_WATCHDOG;
- the store: the real boards' file store (one file per slot, HP_STORE the
  folder prefix), its writes cut at a chosen step by a power loss, a soft
  reset, a write error, a kill of the process or a stall (the watchdog bites
  a loop stuck in a write).

Clock: `HP_CLOCK=virtual` (default) runs time only when the rig says `adv`,
jumping from event to event, so a test is deterministic and a session runs in
seconds. `HP_CLOCK=real` follows time.ticks_us() for latency measurements.

The rig channel (rigchannel.py) is a Unix socket (`HP_RIG`, a path): text
lines, see docs/rig.md. Without HP_RIG the board runs alone with every
interlock closed.
"""
import os
import select
import sys
import time
from array import array
from micropython import const

import hal
import ticks
from rigchannel import RigChannel
import reference
from keyframes import position
from filestore import FileStore

_MASK = const(0x3FFFFFFF)  # board ticks are 30-bit, as on the MCUs (firmware/ticks.py)
_KEYFRAMES = const(1024)
_FIFO = const(8)
_REOPEN_POLL_MS = const(20)  # how often a closed link is checked for a new host

# The reference board's tables (shared/reference.py), unchanged on this board
# (but see HP_READY_DELAY_MS below: a bench variant set by the environment).
LIMITS = dict(reference.LIMITS)
SETTINGS = dict(reference.SETTINGS)


class Reset(BaseException):
    """Raised out of the firmware to model a reset; main.py boots again."""

    def __init__(self, cause):
        self.cause = cause


class Laser:
    def __init__(self, board):
        self._b = board
        self.enabled = False
        self.width_us = 0
        self.power_w = 0
        self._armed = False
        self.nb = 0
        self.target = 0
        self.dir = 0
        self._fifo = array("i", bytes(4 * 3 * _FIFO))
        self._n = 0
        self.gain_pct = 100
        self.dropouts = 0
        self.stuck = False

    def off(self):
        self._armed = False
        self._set_enable(False)

    def reset(self, cold):
        """The output stage across a reset: the armed pulse and the FIFO are
        gone; the enable latch drops only on a cold reset (power, watchdog)."""
        self._armed = False
        self._n = 0
        if cold:
            self.enabled = False

    def enable(self, on):
        self._set_enable(bool(on))

    def _set_enable(self, on):
        if on != self.enabled:
            self.enabled = on
            self._b.notify("o %d en=%d" % (self._b.stamp(), 1 if on else 0))

    def configure(self, width_us, power_w):
        self.width_us = width_us
        self.power_w = power_w

    def arm(self, not_before_us, target, direction):
        self.nb = not_before_us
        self.target = target
        self.dir = direction
        self._armed = True

    def disarm(self):
        self._armed = False

    def armed(self):
        return self._armed

    def take_pulse(self, rec):
        if not self._n:
            return False
        self._n -= 1
        for i in range(3):
            rec[i] = self._fifo[i]
        for i in range(3 * self._n):
            self._fifo[i] = self._fifo[i + 3]
        return True

    def stray_light(self):
        return self.stuck

    def fire(self, t, pos):
        """The hardware fired: light out, photodiode read, FIFO entry."""
        self._armed = False
        nominal = self.width_us * self.power_w
        uj = 0 if self.dropouts else nominal * self.gain_pct // 100
        if self.dropouts:
            self.dropouts -= 1
        self._b.notify("p %d %d %d %d %d" % (t, pos, uj, self.width_us, self.power_w))
        if self._n < _FIFO:
            j = 3 * self._n
            self._fifo[j] = t & _MASK
            self._fifo[j + 1] = pos
            self._fifo[j + 2] = uj
            self._n += 1


class Encoder:
    """Hand position from keyframes; linear between them, held after the last."""

    def __init__(self, board):
        self._b = board
        self.kt = []  # keyframe times, virtual us, increasing
        self.kx = []  # keyframe positions, counts

    def count(self):
        return self.at(self._b.t)

    def add(self, t, x):
        if self.kt and t <= self.kt[-1]:
            raise ValueError("keyframe time must increase")
        if len(self.kt) >= _KEYFRAMES:
            raise ValueError("keyframe queue full (%d)" % _KEYFRAMES)
        self.kt.append(t)
        self.kx.append(x)

    def clear(self, x):
        self.kt = [self._b.t]
        self.kx = [x]

    def prune(self, t):
        """Drop keyframes wholly in the past; keep the one the present starts from."""
        while len(self.kt) >= 2 and self.kt[1] <= t:
            self.kt.pop(0)
            self.kx.pop(0)

    def at(self, t):
        return position(self.kt, self.kx, t)

    def next_turn(self, t):
        """Time of the next keyframe after t (where the hand may turn), or -1."""
        for kt in self.kt:
            if kt > t:
                return kt
        return -1

    def reach(self, target, d, t0, t1):
        """Earliest t in [t0, t1] with position*d >= target*d, or -1."""
        if self.at(t0) * d >= target * d:
            return t0
        kt, kx = self.kt, self.kx
        for i in range(1, len(kt)):
            a, b = kt[i - 1], kt[i]
            if b < t0 or a > t1:
                continue
            xa, xb = kx[i - 1] * d, kx[i] * d
            if xb < target * d or xb <= xa:
                continue
            # xa + (xb - xa) * (t - a) // (b - a) >= target*d, smallest integer t
            num = (target * d - xa) * (b - a)
            t = a + max(0, -(-num // (xb - xa)))
            while xa + (xb - xa) * (t - a) // (b - a) < target * d:
                t += 1
            t = max(t, t0)
            return t if t <= t1 else -1
        return -1


class Inputs:
    """Interlock opening latched as the MCU boards' trip IRQs latch it
    (mcu.Inputs, SR-4): an interlock the rig opened reads open at the next
    read() even if the rig closed it again before the loop looked, so an
    opening shorter than one control step still reaches the core."""

    def __init__(self):
        self.bits = 0x3F  # every interlock closed, footswitch up
        self.tripped = 0  # interlocks opened since the last read()

    def set(self, bit, on):
        if on:
            self.bits |= bit
        else:
            self.bits &= ~bit
            self.tripped |= bit & 0x3F

    def read(self):
        bits = self.bits & ~self.tripped
        self.tripped = 0
        return bits


class Indicator:
    def __init__(self, board):
        self._b = board
        self.on = False

    def set(self, on):
        on = bool(on)
        if on != self.on:
            self.on = on
            self._b.notify("o %d ind=%d" % (self._b.stamp(), 1 if on else 0))


class Link:
    """The process's stdin/stdout, like USB-CDC on a board. The host hands over
    a pty master set non-blocking, so a read returns what is there (None when
    nothing) and a write takes what fits (None when the pty is full). In a
    terminal (a blocking tty) VMIN=0 gives the same reads, but writes block.

    When the host closes its side (the pty's reads fail with EIO, poll says
    POLLHUP) the link is `closed`: readinto() returns -1, which the firmware
    takes as a lost link, and a write takes nothing (the firmware's queue
    keeps the newest lines for the next host). The firmware keeps running;
    the board notices when a host opens the pty again (Board._watch_link)."""

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


class Store(FileStore):
    """The real boards' store (shared/filestore.py), its rename done the way
    FAT does it (remove, then rename): the worst case of the real boards.

    `cut` stops the next write at a step: `data` (half the block is in the
    temporary file) or `swap` (the slot's file removed, the temporary file not
    yet renamed), then does `power` (a power loss), `soft` (a soft reset),
    `error` (the write raises OSError, as a failing flash does), `kill` (the
    firmware process is killed, SIGKILL) or `stall` (the write blocks for
    `stall_us` of board time, watchdog running, then goes on)."""

    ACTIONS = ("power", "soft", "error", "kill", "stall")

    def __init__(self, board, folder):
        super().__init__(folder)
        self._b = board
        self.cut = None  # (step, action, stall_us) for the next write
        self._cut = None  # the cut of the write under way

    def write(self, slot, data):
        self._cut, self.cut = self.cut, None
        super().write(slot, data)

    def _put(self, path, block):
        if self._cut and self._cut[0] == "data":
            with open(path, "wb") as f:
                f.write(block[: len(block) // 2])
            self._act()
        super()._put(path, block)

    def _replace(self, tmp, path):
        try:
            os.remove(path)
        except OSError:
            pass  # the slot's first write
        if self._cut and self._cut[0] == "swap":
            self._act()
        os.rename(tmp, path)

    def _act(self):
        step, action, stall_us = self._cut
        self._cut = None
        b = self._b
        b.notify("r %d cut %s %s" % (b.t, step, action))
        if action == "stall":
            b.block(stall_us)  # the loop is stuck in the write; the watchdog is not
        elif action == "kill":
            os.system("kill -9 $PPID")  # this process, from the shell it started
        elif action == "error":
            raise OSError(5)  # EIO: the firmware restarts after the exception
        elif action == "soft":
            b.reset_now(hal.RESET_SOFT, "soft")
        else:
            b.laser.off()
            b.reset_now(hal.RESET_POWER, "power torn-write")


class Wdt:
    """Bites when not fed for its timeout of board time. The board checks it
    wherever its time passes (_hardware): in wait(), and in block() while the
    firmware is stuck elsewhere, so a loop stuck in a write is bitten too."""

    def __init__(self, board):
        self._b = board
        self.timeout_us = 0
        self.fed = 0

    def start(self, timeout_ms):
        self.timeout_us = timeout_ms * 1000
        self.fed = self._b.t

    def feed(self):
        self.fed = self._b.t


# A bench variant of the simulated board: a shorter ready delay, so that a
# real-time latency benchmark can re-arm a thousand times in minutes. Set by
# whoever starts the board (like choosing a board definition), never over the wire.
if os.getenv("HP_READY_DELAY_MS"):
    SETTINGS["ready_delay_ms"] = int(os.getenv("HP_READY_DELAY_MS"))


class Board:
    name = "unix"
    limits = LIMITS
    settings = SETTINGS

    def __init__(self):
        self.virtual = os.getenv("HP_CLOCK") != "real"
        # The board timeline in us, never wraps; HP_CLOCK_START_US starts it
        # elsewhere, e.g. just before the 30-bit tick wrap in a test.
        self.t = int(os.getenv("HP_CLOCK_START_US") or 0)
        self._real_t = 0
        self._real_ticks = time.ticks_us()
        self.laser = Laser(self)
        self.encoder = Encoder(self)
        self.inputs = Inputs()
        self.indicator = Indicator(self)
        self.link = Link()
        self.store = Store(self, os.getenv("HP_STORE") or "")
        self.wdt = Wdt(self)
        self.cause = hal.RESET_POWER
        self.until = -1  # virtual time the rig asked to reach; -1 none
        self.stall_until = -1
        self.crash = False
        self.woken = False
        self.loops = 0  # control-loop iterations (each ends in wait())
        self.loop_max_us = 0  # longest board time between two wait() calls (rig `stats`)
        self._loop_t = -1
        self.heap_base = 0  # heap the simulator itself holds, set by main.py
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._stdin_polled = True
        self._reopen = select.poll()  # stdin alone, while the host has it closed
        self._reopen.register(sys.stdin, select.POLLIN)
        self.rig = None
        path = os.getenv("HP_RIG")
        if path:
            self.rig = RigChannel(self, path)
            self._poll.register(self.rig.sock, select.POLLIN)
        self.notify("r %d boot" % self.t)

    # -- the HAL

    def _real(self):
        """Real mode: the board timeline follows time.ticks_us(), unwrapped."""
        now = time.ticks_us()
        self._real_t += time.ticks_diff(now, self._real_ticks)
        self._real_ticks = now
        return self._real_t

    def stamp(self):
        """The board time of an output edge: in real mode, the moment it happens."""
        if not self.virtual:
            self.t = max(self.t, self._real())
        return self.t

    def ticks_us(self):
        if self.crash:
            self.crash = False
            raise RuntimeError("injected by the rig")
        return self.t & _MASK

    def reset_cause(self):
        return self.cause

    def restart(self, cause):
        """What a reset does to the peripherals before the firmware boots again.
        A soft restart (exception) leaves the output latches as they were, so
        the firmware itself must drive them off (SR-1)."""
        self.cause = cause
        self.stall_until = -1
        self._loop_t = -1  # a reboot is not a loop period
        cold = cause == hal.RESET_WATCHDOG or cause == hal.RESET_POWER
        self.laser.reset(cold)
        if cold:
            self.wdt.timeout_us = 0
        self.notify("r %d boot cause=%d" % (self.t, cause))

    def reset_now(self, cause, what):
        """A reset from outside the firmware (power, soft reset, torn write)."""
        self.notify("r %d %s" % (self.t, what))
        raise Reset(cause)

    def block(self, us):
        """The firmware is stuck for `us` outside wait() (a slow write): the
        board's time runs on without it, and so does the watchdog."""
        if self.virtual:
            end = self.t + us
            while self.t < end:
                self._hardware(end)
        else:
            time.sleep_us(us)
            self._hardware(self._real())

    def reboot(self, cause):
        self.notify("r %d reboot cause=%d" % (self.t, cause))
        raise Reset(cause)

    def wait(self, deadline):
        """Idle until `deadline` (ticks) or an event: a serial byte, the serial
        line draining after a short write, a rig command, a fired pulse. In
        virtual mode this is where time passes."""
        self.loops += 1
        t = self.t if self.virtual else self._real()
        if self._loop_t >= 0 and t - self._loop_t > self.loop_max_us:
            self.loop_max_us = t - self._loop_t
        self._loop_t = t
        while True:
            stalled = self.stall_until > self.t
            self.woken = False
            self._block(0)
            if self.woken and not stalled:
                return
            if not self.virtual:
                self._hardware(self._real())
                if (self.woken and not stalled) or (ticks.diff(deadline, self.t & _MASK) <= 0 and not stalled):
                    return
                self._block(1)
                if self.woken and not stalled:
                    return
                continue
            if self.until < 0 or self.t >= self.until:
                if self.until >= 0:
                    self.until = -1
                    self.reply("= %d" % self.t)
                self._block(-1)
                if self.woken and self.stall_until <= self.t:
                    return  # a rig command or a serial byte: the loop looks now
                continue
            t1 = self.t + max(1, ticks.diff(deadline, self.t & _MASK))
            if stalled:
                t1 = self.stall_until  # the loop is stalled: time runs on without it
            self._hardware(min(t1, self.until))
            if not stalled or self.t >= self.stall_until:
                return

    def _hardware(self, t1):
        """Run the peripherals from self.t to t1: at most one pulse (the board
        stops there so the firmware sees it), and the watchdog."""
        las = self.laser
        wdt = self.wdt
        bite = wdt.fed + wdt.timeout_us + 1 if wdt.timeout_us else -1
        if 0 <= bite <= t1:
            t1 = bite
        turn = self.encoder.next_turn(self.t)
        if self.t < turn < t1:
            t1 = turn  # the encoder's direction-change event wakes the loop
        if las.armed() and las.enabled:
            start = max(self.t, self._unwrap(las.nb))
            t = -1
            if start <= t1:
                t = start if las.dir == 0 else self.encoder.reach(las.target, las.dir, start, t1)
            if t >= 0:
                self.t = t
                las.fire(t, self.encoder.at(t))
                self.woken = True
                return
        self.t = t1
        if self.t == bite:
            self.notify("r %d watchdog" % self.t)
            las.off()
            self.stall_until = -1
            raise Reset(hal.RESET_WATCHDOG)
        self.encoder.prune(self.t)

    def _unwrap(self, tick):
        """A ticks value from the firmware back onto the board's full timeline."""
        return self.t + ticks.diff(tick, self.t & _MASK)

    # -- I/O and the rig

    def _block(self, timeout_ms):
        if self.link.closed and not 0 <= timeout_ms <= _REOPEN_POLL_MS:
            timeout_ms = _REOPEN_POLL_MS
        if self._stdin_polled:
            # After a short write, the pty draining (the host reads again) is
            # an event too, so queued output goes out without waiting for input.
            self._poll.modify(sys.stdin, select.POLLIN | select.POLLOUT if self.link.full else select.POLLIN)
        for obj, ev in self._poll.poll(timeout_ms):
            self.woken = True
            if self.rig is not None and obj is self.rig.sock:
                self.rig.serve()
            else:
                if ev & (select.POLLHUP | select.POLLERR):
                    self.link.closed = True  # the host closed its side: the loop sees it now
                if ev & select.POLLOUT:
                    self.link.full = False
        self._watch_link()

    def _watch_link(self):
        """A closed pty reports POLLHUP on every poll: stdin leaves the wait's
        poll while the link is closed (else wait() would never block), and a
        host opening the pty again is noticed here, within _REOPEN_POLL_MS."""
        link = self.link
        if link.closed and self._stdin_polled:
            self._poll.unregister(sys.stdin)
            self._stdin_polled = False
        elif link.closed:
            for _, ev in self._reopen.poll(0):
                if ev & (select.POLLHUP | select.POLLERR):
                    return
            link.closed = False
            self._poll.register(sys.stdin, select.POLLIN)
            self._stdin_polled = True
            self.woken = True

    def notify(self, text):
        if self.rig is not None:
            self.rig.send(text)

    def reply(self, text):
        if text is not None and self.rig is not None:
            self.rig.send(text)


def make():
    return Board()
