"""Fake `esp32` (tests only): an RMT that records what it was asked to send."""


class RMT:
    def __init__(self, id, *, pin=None, resolution_hz=None, clock_div=None, idle_level=False, tx_carrier=None,
                 num_symbols=None):
        self.clock_div = clock_div
        self.resolution_hz = resolution_hz
        self.sent = []

    @staticmethod
    def source_freq():
        return 80_000_000

    def write_pulses(self, duration, data=True):
        self.sent.append((tuple(duration), data))

    def wait_done(self, *, timeout=0):
        return True
