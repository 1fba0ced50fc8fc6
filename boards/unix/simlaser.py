"""The simulated laser output stage and photodiode.

A one-shot armed pulse fires when the board's clock (simclock.py) reaches
its moment (the encoder at its target, or its time for time-only pulses);
only while the enable line is high. The photodiode reads each
pulse's energy (gain, dropouts, stuck-on light injectable by the rig).
Nothing gates the laser on the interlocks, so the firmware alone is under test.
"""
from array import array
from micropython import const

_MASK = const(0x3FFFFFFF)  # board ticks are 30-bit, as on the MCUs (firmware/ticks.py)
_FIFO = const(8)


class Laser:
    pd_step_uj = 1  # the simulated photodiode reads exact microjoules

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

