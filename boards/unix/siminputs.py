"""The simulated digital lines: the inputs the rig sets, the indicator output."""


class Inputs:
    def __init__(self):
        self.bits = 0x3F  # every interlock closed, footswitch up

    def read(self):
        return self.bits


class Indicator:
    def __init__(self, board):
        self._b = board
        self.on = False

    def set(self, on):
        on = bool(on)
        if on != self.on:
            self.on = on
            self._b.notify("o %d ind=%d" % (self._b.stamp(), 1 if on else 0))

