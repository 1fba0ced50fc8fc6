"""Fake `pyb` (tests only): timers that keep their settings, a VCP without data."""
import machine

_TEST_HOOKS = {"Timer": ("clock_hz", "made")}
# Parameters the port takes that its stubs leave out (pyb.Timer.init's
# documentation names `brk`).
_STUB_GAPS = {"Timer.__init__": ("brk",)}


class Pin(machine.Pin):
    """pyb.Pin: machine.Pin's pin, with pyb's own arguments (no `drive`)."""
    OUT_PP = 1
    PULL_NONE = 0

    def __init__(self, id, mode=-1, pull=-1, *, value=None, alt=-1):
        machine.Pin.__init__(self, id, mode, pull, value=value, alt=alt)

    def init(self, mode=-1, pull=-1, *, value=None, alt=-1):
        machine.Pin.init(self, mode, pull, value=value, alt=alt)

    def value(self, value=None):
        return machine.Pin.value(self, value)


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

    def __init__(self, id, *, freq=None, prescaler=None, period=None, mode=None, div=None, callback=None,
                 deadtime=None, brk=None):
        self.n = id
        self.kw = {k: v for k, v in (("freq", freq), ("prescaler", prescaler), ("period", period), ("brk", brk))
                   if v is not None}
        self.channels = {}
        self.raw = 0
        self.script = []  # counter() readings to return first, one per read
        Timer.made[id] = self

    def channel(self, channel, mode=None, *, callback=None, pin=None, pulse_width=None, pulse_width_percent=None,
                compare=None, polarity=None):
        ch = _Channel(mode, {"pin": pin, "pulse_width": pulse_width})
        self.channels[channel] = ch
        return ch

    def counter(self, value=None):
        if value is None:
            if self.script:
                self.raw = self.script.pop(0) & 0xFFFF
            return self.raw
        self.raw = value & 0xFFFF

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
    def setinterrupt(self, chr):
        pass

    def any(self):
        return False

    def readinto(self, buf):
        return None

    def write(self, buf):
        return len(buf)

    def send(self, buf, *, timeout=5000):
        return len(buf)


_usb = ["VCP+MSC"]  # the pyboard's factory default


def usb_mode(modestr=-1, *, port=-1, vid=0xF055, pid=-1, msc=(), hid=None, high_speed=False):
    if modestr == -1:
        return _usb[0]
    _usb[0] = modestr
