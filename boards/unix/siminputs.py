"""The simulated digital lines: the inputs the rig sets, the indicator output."""
from interlocks import INTERLOCKS


class Inputs:
    """Interlock opening latched as the MCU boards' trip IRQs latch it
    (mcu.Inputs, SR-4): an interlock the rig opened reads open at the next
    read() even if the rig closed it again before the loop looked, so an
    opening shorter than one control step still reaches the core."""

    def __init__(self):
        self.bits = INTERLOCKS  # every interlock closed, footswitch up
        self.tripped = 0  # interlocks opened since the last read()

    def set(self, bit, on):
        if on:
            self.bits |= bit
        else:
            self.bits &= ~bit
            self.tripped |= bit & INTERLOCKS

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

