"""Fake `esp32` (tests only): an RMT that records what it was asked to send."""


class RMT:
    def __init__(self, channel, pin=None, clock_div=None, resolution_hz=None, idle_level=False, **kw):
        self.clock_div = clock_div
        self.resolution_hz = resolution_hz
        self.sent = []

    @staticmethod
    def source_freq():
        return 80_000_000

    def write_pulses(self, durations, data=True):
        self.sent.append((tuple(durations), data))

    def wait_done(self, timeout=0):
        return True
