"""The simulated watchdog."""


class Wdt:
    """Bites when not fed for its timeout of board time. The board checks it
    wherever its time passes (_hardware): in wait(), and in block() while the
    firmware is stuck elsewhere, so a loop stuck in a write is bitten too."""

    def __init__(self, board):
        self._b = board
        self.timeout_us = 0
        self.fed = 0

    def start(self, timeout_ms):
        self.timeout_us = timeout_ms * 1000
        self.fed = self._b.t

    def feed(self):
        self.fed = self._b.t

