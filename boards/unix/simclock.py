"""The simulated board's clock, and the wait where its time passes.

`HP_CLOCK=virtual` (default) runs time only when the rig says `adv`, jumping
from event to event, so a test is deterministic and a session runs in
seconds. `HP_CLOCK=real` follows time.ticks_us() for latency measurements.
While time passes the peripherals run (Clock._hardware): an armed pulse
fires at the exact moment the encoder reaches its target (solved on the
piecewise-linear hand path, not sampled), the watchdog bites when not fed.
The wait also serves the serial link and the rig channel (Clock._block).

Clock is the time half of the Board class (board.py), which it is mixed into.
"""
import os
import select
import sys
import time
from micropython import const

import hal
import ticks

_MASK = const(0x3FFFFFFF)  # board ticks are 30-bit, as on the MCUs (firmware/ticks.py)
_REOPEN_POLL_MS = const(20)  # how often a closed link is checked for a new host


class Reset(BaseException):
    """Raised out of the firmware to model a reset; main.py boots again."""

    def __init__(self, cause):
        self.cause = cause


class Clock:
    """The board's time and the wait; its state is the board's (rigchannel.py reads it)."""

    def __init__(self):
        self.virtual = os.getenv("HP_CLOCK") != "real"
        # The board timeline in us, never wraps; HP_CLOCK_START_US starts it
        # elsewhere, e.g. just before the 30-bit tick wrap in a test.
        self.t = int(os.getenv("HP_CLOCK_START_US") or 0)
        self._real_t = 0
        self._real_ticks = time.ticks_us()
        self.until = -1  # virtual time the rig asked to reach; -1 none
        self.stall_until = -1
        self.crash = False
        self.woken = False
        self.loops = 0  # control-loop iterations (each ends in wait())
        self.loop_max_us = 0  # longest board time between two wait() calls (rig `stats`)
        self._loop_t = -1
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._stdin_polled = True
        self._reopen = select.poll()  # stdin alone, while the host has it closed
        self._reopen.register(sys.stdin, select.POLLIN)

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

