"""HAL parts that are the same `machine` code on every MCU board (rp2, stm32, esp32).

What stays in each board.py: which pins, and how the input interrupts are
set up (hard IRQs on rp2 and stm32, soft ones on esp32; each board's
docstring says what that means for the trip latency).
"""
import machine
from machine import Pin

import hal


class Indicator:
    """The emission indicator lamp driver on one output pin, off at start."""

    def __init__(self, pin_id):
        self._pin = Pin(pin_id, Pin.OUT, value=0)

    def set(self, on):
        self._pin.value(1 if on else 0)


class Inputs:
    """Interlock and footswitch inputs, pulled down, in firmware/interlocks.py
    bit order: an interlock reads 1 only when closed, so a cut wire is open.

    A board subclasses this and attaches _tripper(i) to interlock pin i and
    _wake to the footswitch. On rp2 and stm32 they run as hard IRQs: they
    must stay integer and register work only, with no allocation (SR-3).

    A trip is latched (SR-4): each interlock's handler counts its trips, and
    the next read() after a trip reports that interlock open, even if the
    contact has closed again since. An opening shorter
    than one control step therefore reaches the core, which faults on it,
    instead of leaving it emitting with the enable line low. The handler is
    the only writer of the counts and read() of what it has reported, so no
    trip is lost without masking interrupts (esp32's soft handlers cannot be
    masked).
    """

    def __init__(self, board, pin_ids):
        self._b = board
        self._pins = tuple(Pin(p, Pin.IN, Pin.PULL_DOWN) for p in pin_ids)
        self._trips = bytearray(len(pin_ids))  # trips counted by each IRQ handler, mod 256
        self._seen = bytearray(len(pin_ids))  # the counts read() has reported

    def _tripper(self, i):
        """The IRQ handler of interlock pin i: the laser enable drops first."""
        board = self._b
        trips = self._trips

        def trip(pin):
            board.laser.off()  # first: drop the laser enable
            trips[i] = (trips[i] + 1) & 0xFF
            board.woken = True

        return trip

    def _wake(self, pin):
        self._b.woken = True

    def read(self):
        bits = 0
        pins = self._pins
        for i in range(len(pins)):
            if pins[i].value():
                bits |= 1 << i
        trips = self._trips
        seen = self._seen
        for i in range(len(trips)):  # after the pins: a trip during the loop above reads open
            if trips[i] != seen[i]:
                seen[i] = trips[i]
                bits &= ~(1 << i)
        return bits

    def tripped(self):
        """True while an interlock trip has not yet been reported by read()."""
        return self._trips != self._seen


class Wdt:
    """machine.WDT, started by the core (it cannot be stopped once started)."""

    def __init__(self):
        self._wdt = None

    def start(self, timeout_ms):
        self._wdt = machine.WDT(timeout=timeout_ms)

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()


def closed(interlocks):
    """True when every interlock pin reads high (closed and healthy)."""
    for p in interlocks:
        if not p.value():
            return False
    return True


def check_pulse(limits, width_us, power_w):
    """Refuse a pulse shape outside the board's hard limits (ValueError)."""
    if not limits["width_us_min"] <= width_us <= limits["width_us_max"]:
        raise ValueError("width_us %d outside the board limits" % width_us)
    if not 0 <= power_w <= limits["power_w_max"]:
        raise ValueError("power_w %d outside the board limits" % power_w)


class Turn:
    """Sees the encoder change direction, for wait() (hal: wait returns when
    the encoder changes direction). turned(count) is true at the first count
    that moves against the last movement; integer work only. A count dithering
    on one edge at rest reads as turns: wait() then returns early, which only
    costs an extra control step."""

    def __init__(self):
        self._last = 0
        self._sign = 0

    def turned(self, count):
        d = count - self._last
        if not d:
            return False
        self._last = count
        s = 1 if d > 0 else -1
        flipped = s != self._sign and self._sign != 0
        self._sign = s
        return flipped


def cause_of(machine_cause, soft=(), crash=()):
    """hal.RESET_* for a machine.reset_cause() value. Only WDT_RESET and
    PWRON_RESET exist on every port (rp2 defines no other), so the board
    names its own: `soft` the causes that read as RESET_SOFT, `crash` those
    that read as RESET_EXCEPTION; anything else reads as RESET_POWER."""
    if machine_cause == machine.WDT_RESET:
        return hal.RESET_WATCHDOG
    if machine_cause in soft:
        return hal.RESET_SOFT
    if machine_cause in crash:
        return hal.RESET_EXCEPTION
    return hal.RESET_POWER
