"""Fired-pulse records between the board's fire path and laser.take_pulse().

A ring of _DEPTH records (t_us, encoder count, energy uJ) in one preallocated
array: push() and take() allocate nothing, so they may run in the wait loop
or an interrupt handler. The core arms one pulse at a time and drains the
ring every control step, so it holds at most one record in normal running.
Overflow (the core stopped draining) drops the new record and sets `lost`:
the board then reports stray light, so the core faults instead of
delivering energy it never counted (SR-10). `lost` is never cleared: the
uncounted energy is gone for good, so stray light stays reported (and the
fault cannot be reset) until the board restarts.
"""
from array import array
from micropython import const

_DEPTH = const(4)


class PulseLog:
    def __init__(self):
        self._buf = array("i", bytes(4 * 3 * _DEPTH))
        self._head = 0  # next record to take
        self._n = 0
        self.lost = False

    def push(self, t_us, count, energy_uj):
        if self._n >= _DEPTH:
            self.lost = True
            return
        j = 3 * ((self._head + self._n) % _DEPTH)
        self._buf[j] = t_us
        self._buf[j + 1] = count
        self._buf[j + 2] = energy_uj
        self._n += 1

    def take(self, rec):
        if not self._n:
            return False
        j = 3 * self._head
        rec[0] = self._buf[j]
        rec[1] = self._buf[j + 1]
        rec[2] = self._buf[j + 2]
        self._head = (self._head + 1) % _DEPTH
        self._n -= 1
        return True
