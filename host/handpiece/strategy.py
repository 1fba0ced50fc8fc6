"""Bring a device into the state a test asks for (labgrid's Strategy idea):
tests say `station.emitting()`, not the boot steps.

On the virtual clock the station lets device time pass through the rig. On
a wall-clock target (a board, with or without the bench rig) it waits
instead, with timeouts: for the device's own clock to run on, and for the
events that say a step happened."""
from __future__ import annotations

import time

from .device import REPLY_TIMEOUT_S, Device, DeviceError, ProtocolError
from .motion import Motion
from .program import Program, parse, upload
from .rig import Rig

DEBOUNCE_MS = 25  # a little more than the board's input debounce
WAIT_MARGIN_S = 5.0  # wall clock: hang protection beyond the device time waited for
# A wait may be this many times slower than the slowdown measured since the rig
# opened: on the emulated two-Pico bench emission ran 2.5x slower than the
# test's start, and a 5 s wait ended at 4,964 ms with twice the prediction.
SLOW_FACTOR = 4
# How often the device's clock is read while waiting, in device time (wall
# time scaled by the measured slowdown): each read is a STATUS line the device's
# loop handles, and polled every 10 ms of wall time the emulated bench's device,
# 35x slower, was handling one every ~25 ms of its own time, its loop away
# from the pulse it had armed meanwhile.
POLL_S = 0.01
BOOT_S = 2.0  # device time from a reset to the first reply, with margin (the rp2 image: ~0.6 s)
T_WRAP_MS = 0x40000000 // 1000 + 1  # status `t` is the 30-bit us tick in ms: it wraps after 1,073,741

# A scan program for tests: 100 J at 3000 W x 120 us (277 pulses, tens of seconds of scanning).
TEST_SCAN = {
    "program": {"name": "test scan"},
    "phase": [{
        "name": "scan", "mode": "scan", "width_us": 120, "power_w": 3000, "rate_hz": 30,
        "energy_j": 100, "spacing_mm": 3.3, "speed_min_mm_s": 20, "speed_max_mm_s": 150,
    }],
}


SETTLE_S = 60.0  # hang protection for to_standby(): an emulated board takes ~40x the device's time


def to_standby(device: Device, timeout_s: float = SETTLE_S) -> None:
    """Bring a board that is not fresh (a serial target is not reset between
    tests; a bench's device boots with the rig's interlock lines still open)
    to the state a fresh one starts in: STANDBY, no host supervision.
    Emission is stopped, an armed state disarmed, a latched fault reset once
    its causes are gone (the rig has just closed every interlock; the board
    debounces them first, so RESET is repeated until it is taken)."""
    device.hello()
    deadline = time.monotonic() + timeout_s
    refused: DeviceError | None = None
    while (state := device.state()) != "STANDBY":
        if time.monotonic() > deadline:
            raise ProtocolError(f"the device stays in {state}, not STANDBY" + (f": {refused}" if refused else ""))
        try:
            if state == "EMITTING":
                device.stop()
            elif state == "FAULT":
                device.request("RESET")
            elif state in ("READY", "PAUSED", "DONE"):
                device.request("STANDBY")
        except DeviceError as e:
            refused = e
        time.sleep(0.1)  # BOOT and SELFTEST end by themselves
    if device.request("GET").fields.get("sup_ms") != "0":
        device.request("SET sup_ms=0")


class Station:
    def __init__(self, device: Device, rig: Rig | None):
        self.device = device
        self.rig = rig
        self.ready_delay_ms = 0
        self.heartbeat_ms = 0  # while > 0, advance() sends HB at this interval

    def standby(self) -> Station:
        self.device.hello()
        settings = self.device.request("GET").fields
        self.ready_delay_ms = int(settings["ready_delay_ms"])
        return self

    def load(self, program: Program | dict | None = None) -> dict[str, str]:
        if program is None:
            program = TEST_SCAN
        if isinstance(program, dict):
            program = parse(program, "test")
        return upload(self.device, program)

    def ready(self, program: Program | dict | None = None) -> Station:
        """READY with the ready delay passed, footswitch up."""
        self.standby()
        self.load(program)
        self.device.request("READY")
        self.advance(self.ready_delay_ms + 1)
        return self

    def emitting(self, program: Program | dict | None = None, motion: Motion | None = None) -> Station:
        self.ready(program)
        self.press_and_move(motion)
        if self.virtual:
            self.advance(DEBOUNCE_MS)
        return self

    def press_and_move(self, motion: Motion | None = None) -> int:
        """Move the hand along `motion` and press the footswitch; returns the
        motion's start (rig time). On a wall clock, returns once the device
        says EMITTING. The hand sets off with the press: where it rests at the
        press is where a trigger point anchors, and a supervised device must
        not wait unheard for a motion sent after it emits."""
        t0 = self.rig.hand(motion) if motion is not None else self.rig.now_us()
        n = len(self.device.events)
        self.rig.press()
        if not self.virtual:
            self.wait_event("state", lambda e: e.text.endswith(">EMITTING"), since=n, timeout_s=self.wall_s(1.0))
        return t0

    @property
    def virtual(self) -> bool:
        """Device time runs only when the rig advances it."""
        return self.rig is not None and self.rig.virtual

    def wall_s(self, device_s: float) -> float:
        """Wall seconds that `device_s` of device time may take: longer on an
        emulated board, by the slowdown its rig has measured on this run."""
        slowdown = getattr(self.rig, "slowdown", None)
        return device_s * (slowdown() if slowdown is not None else 1.0)

    def hello(self) -> dict[str, str]:
        """HELLO after a reset: the device may still be booting (the rp2 image
        answers ~0.6 s of its own time after power-up), so the wait for its
        answer scales with the rig's measured slowdown (hang protection only)."""
        return self.device.hello(timeout_s=max(REPLY_TIMEOUT_S, 2 * self.wall_s(BOOT_S)))

    def wait_event(self, name: str, pred=lambda e: True, since: int = 0, timeout_s: float = WAIT_MARGIN_S):
        """Wall clock: the first event `name` from event number `since` on that
        satisfies `pred`, waiting up to timeout_s for it."""
        def find():
            return next((e for e in self.device.events[since:] if e.name == name and pred(e)), None)

        what = f"a {name!r} event"
        if not self.heartbeat_ms:
            return self.device.wait(find, timeout=timeout_s, what=what)
        # Supervised: the device must hear a frame while the station waits too.
        deadline = time.monotonic() + timeout_s
        while True:
            got = find()
            if got:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return self.device.wait(find, timeout=0, what=what)  # raises, naming what
            self.device.request("HB")
            try:
                return self.device.wait(find, timeout=min(left, self.heartbeat_ms / 1000), what=what)
            except ProtocolError:
                if self.device.closed:
                    raise

    def supervise(self, sup_ms: int) -> None:
        """Host-supervised mode: the device needs a frame every sup_ms; this
        station's advance() then heartbeats at two thirds of that."""
        self.device.request(f"SET sup_ms={sup_ms}")
        self.heartbeat_ms = sup_ms * 2 // 3

    def advance(self, ms: float) -> int:
        """Let device time pass (heartbeating if supervised), then catch up
        with everything the device said. Returns the rig's time after (the
        device's time, in us, on a wall-clock target without a rig)."""
        if not self.virtual:
            return self._wait_device_ms(ms)
        left = ms
        while self.heartbeat_ms and left > self.heartbeat_ms:
            self.device.request("HB")
            self.rig.advance(self.heartbeat_ms)
            left -= self.heartbeat_ms
        if self.heartbeat_ms:
            self.device.request("HB")
        t = self.rig.advance(left)
        self.device.sync()
        return t

    def _wait_device_ms(self, ms: float) -> int:
        """Wall clock: wait until the device's clock has run `ms` on, sending
        heartbeats if supervised and keeping the rig's hand keyframes fed.
        The device may be booting (a power cycle just before): its first
        answer may take a boot, scaled to the rig's measured slowdown."""
        t0 = int(self.device.query_status(timeout_s=max(REPLY_TIMEOUT_S, 2 * self.wall_s(BOOT_S)))["t"])
        t_last = t0
        # Hang protection, not a timing check: the device clock must move on
        # within WAIT_MARGIN_S, and the whole wait may take SLOW_FACTOR times
        # what its measured slowdown predicts (an emulator's speed varies with
        # load and with what the chips do).
        deadline = time.monotonic() + SLOW_FACTOR * self.wall_s(ms / 1000) + WAIT_MARGIN_S
        stalled_at = time.monotonic() + WAIT_MARGIN_S
        beat = time.monotonic()
        poll_s = self.wall_s(POLL_S)
        while True:
            if self.heartbeat_ms and time.monotonic() >= beat:
                self.device.request("HB")
                beat = time.monotonic() + self.heartbeat_ms / 1000
            feed = getattr(self.rig, "feed", None)
            if feed is not None:
                feed()
            t = int(self.device.query_status()["t"])
            if (t - t0) % T_WRAP_MS >= ms:
                break
            now = time.monotonic()
            if t != t_last:
                t_last, stalled_at = t, now + WAIT_MARGIN_S
            if now > deadline or now > stalled_at:
                raise ProtocolError(f"the device clock ran {(t - t0) % T_WRAP_MS} ms of the {ms:.0f} ms waited for "
                                    f"({'stood still' if now > stalled_at else 'too slow'})")
            # a heartbeat falls due before the next poll: sleep only until then
            time.sleep(min(poll_s, max(0.0, beat - time.monotonic())) if self.heartbeat_ms else poll_s)
        self.device.sync()
        return self.rig.now_us() if self.rig is not None else t * 1000

    def state(self) -> str:
        return self.device.state()
