"""The rig: what the test bench does to the device, apart from its protocol.

`Rig` is the interface: move the handpiece, open and close interlocks, press
the footswitch, inject photodiode faults, stall the loop, drop the host link,
and observe what the laser really did (enable line, indicator, pulses). The
simulated board implements it over a Unix socket (`UnixRig`); a bench rig
(a second microcontroller wired to the device) can implement the same.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from .motion import Motion

INPUTS = ("key", "door", "estop", "handpiece", "temp", "flow", "foot")
RIG_TIMEOUT_S = 30.0  # hang protection for one rig command
KEYFRAMES_MAX = 1024  # the simulated board's keyframe queue (docs/rig.md)
AHEAD_US = 1_000_000  # keyframes are sent this far ahead of the time the board runs to
BATCH = KEYFRAMES_MAX // 4  # at most this many keyframes sent for one `adv`

# What a rig may or may not be able to do; a test that needs one is marked
# needs_<name> and skipped, with this reason, on a target without it.
CAPABILITIES = {
    "virtual_clock": "a virtual clock the rig advances (time stands still between steps)",
    "reset_model": "modelled resets inside the firmware (an exception raised in it, a soft reset, "
                   "a store write cut at a chosen step, a scrambled store)",
    "torn_write": "a power loss half way through the next store write",
    "loop_stall": "a hung control loop (the CPU stops, the clock and the watchdog run on)",
    "photodiode_faults": "photodiode faults on the light path (gain, dropouts, stray light)",
    "fault_injection": "a cut serial link (bytes lost both ways)",
    "light_meter": "each pulse's light as the laser made it (energy, power); a bench rig sees the fire line only",
}


class RigError(RuntimeError):
    pass


@dataclass
class Pulse:
    t_us: int
    pos: int  # encoder counts where it fired
    uj: int  # photodiode reading
    width_us: int
    power_w: int


class Rig:
    """Interface. Times are the board's microseconds."""

    counts_per_mm = 20
    virtual = False
    capabilities: frozenset[str] = frozenset()  # names from CAPABILITIES

    def set_input(self, name: str, on: bool) -> int:
        raise NotImplementedError

    def advance(self, ms: float) -> int:
        """Let `ms` of device time pass; returns the board time after."""
        raise NotImplementedError

    def hand(self, motion: Motion) -> int:
        """Move the handpiece along `motion`, starting now; returns its start time."""
        raise NotImplementedError

    def photodiode(self, gain_pct: int | None = None, drop: int | None = None, stuck: bool | None = None) -> None:
        raise NotImplementedError

    def stall(self, ms: float) -> int:
        """Hang the control loop for `ms`; returns the board time it ends."""
        raise NotImplementedError

    def crash(self) -> None:
        raise NotImplementedError

    def tear_next_write(self) -> None:
        raise NotImplementedError

    def power_cycle(self) -> None:
        raise NotImplementedError

    def host_link(self, up: bool) -> None:
        raise NotImplementedError

    # conveniences, the same on every rig
    def open(self, name: str) -> int:
        return self.set_input(name, False)

    def close(self, name: str) -> int:
        return self.set_input(name, True)

    def press(self) -> int:
        return self.set_input("foot", True)

    def release(self) -> int:
        return self.set_input("foot", False)


class UnixRig(Rig):
    """The simulated board's rig channel (docs/rig.md)."""

    def __init__(self, conn: socket.socket):
        self._conn = conn
        self._cv = threading.Condition()
        self._replies: list[str] = []
        self.pulses: list[Pulse] = []
        self.outputs: list[tuple[int, str, int]] = []  # (t_us, 'en'|'ind', value)
        self.resets: list[tuple[int, str]] = []
        self.log: list[str] = []  # every notification, in order
        self._pending: list[tuple[int, int]] = []  # keyframes not yet sent
        self._sent_us = 0  # time of the last keyframe sent
        self._closed = False
        self._thread = threading.Thread(target=self._reader, name="rig", daemon=True)
        self._thread.start()
        info = self.cmd("info")
        fields = dict(w.split("=", 1) for w in info.split())
        self.counts_per_mm = int(fields["counts_per_mm"])
        self.virtual = fields["clock"] == "virtual"
        self.capabilities = frozenset(CAPABILITIES) - (set() if self.virtual else {"virtual_clock"})

    def _reader(self) -> None:
        buf = b""
        while True:
            try:
                data = self._conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cv:
                    self._closed = True
                    self._cv.notify_all()
                return
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._line(raw.decode())

    def _line(self, line: str) -> None:
        with self._cv:
            kind = line[:1]
            if kind in "=?":
                self._replies.append(line)
            else:
                self.log.append(line)
                w = line.split()
                if kind == "p":
                    self.pulses.append(Pulse(*(int(x) for x in w[1:6])))
                elif kind == "o":
                    name, _, v = w[2].partition("=")
                    self.outputs.append((int(w[1]), name, int(v)))
                elif kind == "r":
                    self.resets.append((int(w[1]), " ".join(w[2:])))
            self._cv.notify_all()

    def cmd(self, text: str, timeout_s: float = RIG_TIMEOUT_S) -> str:
        with self._cv:
            if self._closed:
                raise RigError("the simulated board has gone (rig channel closed)")
            self._conn.sendall(text.encode() + b"\n")
            end = time.monotonic() + timeout_s
            while not self._replies:
                if self._closed:
                    raise RigError(f"rig channel closed during {text!r}")
                left = end - time.monotonic()
                if left <= 0:
                    raise RigError(f"no rig reply to {text!r}")
                self._cv.wait(left)
            reply = self._replies.pop(0)
        if reply.startswith("?"):
            raise RigError(f"rig refused {text!r}: {reply[2:]}")
        return reply[2:]

    def now_us(self) -> int:
        return int(self.cmd("now"))

    def set_input(self, name: str, on: bool) -> int:
        if name not in INPUTS:
            raise RigError(f"no input {name!r}; inputs are {', '.join(INPUTS)}")
        return int(self.cmd(f"in {name} {1 if on else 0}"))

    def advance(self, ms: float) -> int:
        """Let the board run; a long run over a dense motion goes in steps of
        at most BATCH keyframes, so the board's queue never overflows."""
        us = round(ms * 1000)
        if us <= 0:
            raise RigError("advance needs a positive time")
        now = self.now_us()
        end = now + us
        while True:
            step_end = end
            if len(self._pending) > BATCH:
                step_end = min(end, max(now + 1, self._pending[BATCH][0] - AHEAD_US))
            self._feed(step_end + AHEAD_US)
            now = int(self.cmd(f"adv {step_end - now}"))
            if now >= end:
                return now

    def _feed(self, horizon_us: int) -> None:
        """Send keyframes up to the horizon and one past it (the board
        interpolates towards the next keyframe, so it must always have it);
        none while the board already has one past it."""
        while self._pending and self._sent_us <= horizon_us:
            t, x = self._pending.pop(0)
            self.cmd(f"kf {t} {x}")
            self._sent_us = t

    def hand(self, motion: Motion) -> int:
        now = self.now_us()
        kfs = motion.keyframes(self.counts_per_mm, now)
        self.cmd(f"hold {kfs[0][1]}")
        self._pending = [k for k in kfs[1:] if k[0] > now]
        self._sent_us = now  # `hold` emptied the board's queue
        self._feed(now + AHEAD_US)
        return now

    def feed(self) -> None:
        """On a real clock (nothing calls adv): queue the keyframes due within
        the next second of board time."""
        if self._pending:
            self._feed(self.now_us() + 1_000_000)

    def position(self) -> int:
        return int(self.cmd("pos"))

    def photodiode(self, gain_pct=None, drop=None, stuck=None) -> None:
        if gain_pct is not None:
            self.cmd(f"pd gain {int(gain_pct)}")
        if drop is not None:
            self.cmd(f"pd drop {int(drop)}")
        if stuck is not None:
            self.cmd(f"pd stuck {1 if stuck else 0}")

    def stall(self, ms: float) -> int:
        return int(self.cmd(f"stall {round(ms * 1000)}"))

    def crash(self) -> None:
        self.cmd("crash")

    def tear_next_write(self) -> None:
        self.cmd("tear")

    def power_cycle(self) -> None:
        self.cmd("power")

    def cut_next_write(self, step: str, action: str, stall_ms: float = 0) -> None:
        """Stop the next store write at `step` ('data': half written, 'swap':
        the old slot file removed, the new one not yet in place) with `action`:
        'power', 'soft', 'error' (the write raises), 'kill' (the firmware
        process) or 'stall' (the write blocks for stall_ms, watchdog running)."""
        self.cmd(f"cut {step} {action} {round(stall_ms * 1000)}")

    def soft_reset(self) -> None:
        """Restart the firmware with the output latches left as they were."""
        self.cmd("soft")

    def scramble_store(self) -> None:
        """Make both store slots unreadable (a failing flash)."""
        self.cmd("scramble")

    def host_link(self, up: bool) -> None:
        self.cmd(f"link {1 if up else 0}")

    def enable_level(self) -> int:
        """The laser-enable line as the rig last saw it."""
        with self._cv:
            for _, name, v in reversed(self.outputs):
                if name == "en":
                    return v
        return 0

    def enable_drops(self, since: int = 0) -> list[int]:
        """Times the laser-enable line went low, from output number `since` on."""
        with self._cv:
            return [t for t, name, v in self.outputs[since:] if name == "en" and v == 0]

    def wait_notification(self, pred, timeout: float = RIG_TIMEOUT_S):
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                got = pred()
                if got:
                    return got
                left = end - time.monotonic()
                if left <= 0 or self._closed:
                    raise RigError("timed out waiting for a rig notification")
                self._cv.wait(left)

    def close_channel(self) -> None:
        """Close the rig channel; the simulated board's process then ends.
        shutdown() first: close() alone leaves the socket open while the
        reader thread is blocked in recv() on it."""
        try:
            self._conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._conn.close()
        except OSError:
            pass
