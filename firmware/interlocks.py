"""Interlock and footswitch inputs (SR-2, SR-3).

Input bits from `board.inputs.read()` are fail-safe: 1 means closed/healthy for
every interlock, 1 means pressed for the footswitch. Debouncing is asymmetric:
a change towards danger (an interlock opening, the footswitch lifting) is taken
at once, a change towards emission (closing, pressing) only after the input has
been steady for `debounce_ms`. A bouncing contact can therefore delay a start,
never a stop.
"""
from micropython import const

KEY = const(0x01)
DOOR = const(0x02)
ESTOP = const(0x04)  # 1 = e-stop not pressed
HANDPIECE = const(0x08)
TEMP = const(0x10)  # laser head temperature within range
FLOW = const(0x20)  # cooling flow present
FOOT = const(0x40)  # footswitch pressed
INTERLOCKS = const(0x3F)  # every bit that must be 1 to emit

NAMES = ("key", "door", "estop", "handpiece", "temp", "flow", "foot")


def open_names(bits):
    """'door,temp' for the interlocks open in `bits`, '' when all closed."""
    return ",".join(NAMES[i] for i in range(6) if not bits & (1 << i))


class Inputs:
    def __init__(self, board, debounce_ms):
        self._board = board
        self._debounce_us = debounce_ms * 1000
        raw = board.inputs.read()
        # Boot takes the inputs as they are; the self-test judges them.
        self.state = raw
        self.raw = raw  # the last sample as read, before debouncing
        self._steady_us = 0

    def update(self, dt_us):
        """Sample the inputs, `dt_us` after the last sample; returns the
        debounced bitmask. Steadiness is added up, never read off the clock."""
        raw = self._board.inputs.read()
        falling = self.state & ~raw  # towards danger: take at once
        if falling:
            self.state &= ~falling
        if raw != self.raw:
            self.raw = raw
            self._steady_us = 0
        elif self._steady_us < self._debounce_us:
            self._steady_us += dt_us
        rising = raw & ~self.state
        if rising and self._steady_us >= self._debounce_us:
            self.state |= rising
        return self.state
