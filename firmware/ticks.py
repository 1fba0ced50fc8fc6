"""Tick arithmetic on a 30-bit microsecond clock, the same on every board.

`board.ticks_us()` counts microseconds modulo 2**30 (what time.ticks_us()
gives on the 32-bit ports). The firmware does its own wrap-around arithmetic
instead of time.ticks_diff so that it behaves the same on a 64-bit Unix port,
where the simulated board can then run the clock across the wrap in a test.
Two ticks compared must be less than half a period (537 s) apart; longer
spans are added up from loop to loop instead (see controller.py, pacer.py).
"""
from micropython import const

PERIOD = const(0x40000000)
MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)


def diff(a, b):
    """a - b in microseconds, for ticks less than half a period apart."""
    return ((a - b + _HALF) & MASK) - _HALF


def add(a, delta_us):
    return (a + delta_us) & MASK
