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

# The one input table: (name, bit, an interlock (must read 1 to emit), the
# level a cut wire reads). Row i is bit i and a board's input pin i (pins are
# pulled down: a cut wire reads 0, open for an interlock, up for the foot).
# The masks and names below, the rig's input names and the boards' pin order
# follow it; the interlocks come first, the footswitch last.
INPUTS = (
    ("key", KEY, True, 0),
    ("door", DOOR, True, 0),
    ("estop", ESTOP, True, 0),
    ("handpiece", HANDPIECE, True, 0),
    ("temp", TEMP, True, 0),
    ("flow", FLOW, True, 0),
    ("foot", FOOT, False, 0),
)
NAMES = tuple(row[0] for row in INPUTS)
N_INTERLOCKS = len([row for row in INPUTS if row[2]])  # pins 0..N_INTERLOCKS-1
INTERLOCKS = sum(row[1] for row in INPUTS if row[2])  # every bit that must be 1 to emit


def open_names(bits):
    """'door,temp' for the interlocks open in `bits`, '' when all closed."""
    return ",".join(NAMES[i] for i in range(N_INTERLOCKS) if not bits & (1 << i))


class Inputs:
    def __init__(self, board, debounce_ms):
        self.board = board
        self._debounce_us = debounce_ms * 1000
        raw = board.inputs.read()
        # Boot takes the inputs as they are; the self-test judges them.
        self.state = raw
        self.raw = raw  # the last sample as read, before debouncing
        self._steady_us = 0

    def update(self, delta_us):
        """Sample the inputs, `delta_us` after the last sample; returns the
        debounced bitmask. Steadiness is added up, never read off the clock."""
        raw = self.board.inputs.read()
        falling = self.state & ~raw  # towards danger: take at once
        if falling:
            self.state &= ~falling
        if raw != self.raw:
            self.raw = raw
            self._steady_us = 0
        elif self._steady_us < self._debounce_us:
            self._steady_us += delta_us
        rising = raw & ~self.state
        if rising and self._steady_us >= self._debounce_us:
            self.state |= rising
        return self.state
