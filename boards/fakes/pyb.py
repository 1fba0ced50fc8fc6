"""Fake `pyb` (tests only): timers that keep their settings, a VCP without data."""
import machine


class Pin(machine.Pin):
    OUT_PP = 1
    PULL_NONE = 0


class _Channel:
    def __init__(self, mode, kw):
        self.mode = mode
        self.kw = kw
        self.percent = 0
        self.width = 0

    def pulse_width(self, v=None):
        if v is None:
            return self.width
        self.width = v

    def pulse_width_percent(self, v=None):
        if v is None:
            return self.percent
        self.percent = v


class Timer:
    UP = 0
    PWM = 0
    PWM_INVERTED = 1
    ENC_AB = 11
    BRK_OFF = 0
    BRK_LOW = 1
    BRK_HIGH = 2
    clock_hz = 168_000_000
    made = {}

    def __init__(self, n, **kw):
        self.n = n
        self.kw = kw
        self.channels = {}
        self.raw = 0
        self.script = []  # counter() readings to return first, one per read
        Timer.made[n] = self

    def channel(self, n, mode=None, **kw):
        ch = _Channel(mode, kw)
        self.channels[n] = ch
        return ch

    def counter(self, v=None):
        if v is None:
            if self.script:
                self.raw = self.script.pop(0) & 0xFFFF
            return self.raw
        self.raw = v & 0xFFFF

    def source_freq(self):
        return Timer.clock_hz

    def period(self):
        if "period" in self.kw:
            return self.kw["period"]
        return Timer.clock_hz // self.kw.get("freq", 1) - 1


class ADC:
    def __init__(self, pin):
        self.raw = 0

    def read(self):
        return self.raw


class RTC:
    pass


class USB_VCP:
    def setinterrupt(self, c):
        pass

    def any(self):
        return False

    def readinto(self, buf):
        return None

    def write(self, buf):
        return len(buf)

    def send(self, data, *, timeout=5000):
        return len(data)
