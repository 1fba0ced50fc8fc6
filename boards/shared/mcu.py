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

    A board subclasses this and attaches _trip to the interlock pins and
    _wake to the footswitch. On rp2 and stm32 they run as hard IRQs: they
    must stay integer and register work only, with no allocation (SR-3).
    """

    def __init__(self, board, pin_ids):
        self._b = board
        self._pins = tuple(Pin(p, Pin.IN, Pin.PULL_DOWN) for p in pin_ids)

    def _trip(self, pin):
        self._b.laser.off()  # first: drop the laser enable
        self._b.woken = True

    def _wake(self, pin):
        self._b.woken = True

    def read(self):
        bits = 0
        for i in range(len(self._pins)):
            if self._pins[i].value():
                bits |= 1 << i
        return bits


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


def cause_of(machine_cause):
    """hal.RESET_* for a machine.reset_cause() value."""
    if machine_cause == machine.WDT_RESET:
        return hal.RESET_WATCHDOG
    if machine_cause == getattr(machine, "SOFT_RESET", None):  # the rp2 port has no SOFT_RESET
        return hal.RESET_SOFT
    return hal.RESET_POWER
