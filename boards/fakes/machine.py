"""Fake `machine` for importing board modules in the Unix port (tests only).

Just enough behaviour for the tests to look at: pins keep their level and
IRQ handler, mem32 is a dict, reset() raises. Not a simulation of any chip.

Test hooks: disable_irq() holds back pin IRQs (Pin.drive) until enable_irq(),
as a masked hard IRQ stays pending on a chip; mem32.hooks[addr] runs after a
write to addr and Pin.read_hook after the next read of that pin, so a test can
land an "interrupt" at an exact point inside board code.
"""
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

reset_cause_value = PWRON_RESET
_freq = [125_000_000]


def freq(hz=None):
    if hz is None:
        return _freq[0]
    _freq[0] = hz


def reset_cause():
    return reset_cause_value


class Reset(Exception):
    pass


def reset():
    raise Reset()


_masked = []  # depth of disable_irq() nesting
_pending = []  # IRQ handlers held back while masked


def disable_irq():
    _masked.append(1)
    return len(_masked)


def enable_irq(state):
    del _masked[state - 1:]
    while not _masked and _pending:
        _pending.pop(0)()


def _interrupt(fn):
    """Run fn as an interrupt: now, or at enable_irq() when masked."""
    if _masked:
        _pending.append(fn)
    else:
        fn()


class _Mem:
    def __init__(self):
        self.cells = {}
        self.hooks = {}  # addr -> fn(value), run after each write to addr

    def __getitem__(self, addr):
        return self.cells.get(addr, 0)

    def __setitem__(self, addr, value):
        self.cells[addr] = value & 0xFFFFFFFF
        hook = self.hooks.get(addr)
        if hook:
            hook(value)


mem32 = _Mem()


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    AF_PP = 4
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8
    used = {}  # id -> Pin, every pin constructed

    def __new__(cls, id, *args, **kw):
        p = Pin.used.get(id)
        if p is None:
            p = object.__new__(cls)
            p.id = id
            p.level = 0
            p.handler = None
            p.trigger = 0
            p.hard = False
            p.mode = -1
            p.pull = -1
            p.read_hook = None
            Pin.used[id] = p
        return p

    def __init__(self, id, mode=-1, pull=-1, value=None, **kw):
        if mode != -1:
            self.mode = mode
        if pull != -1:
            self.pull = pull
        if value is not None:
            self.level = 1 if value else 0

    def init(self, *args, **kw):
        pass

    def value(self, v=None):
        if v is None:
            level = self.level
            hook = self.read_hook
            if hook:
                self.read_hook = None
                hook()
            return level
        self.level = 1 if v else 0

    def on(self):
        self.level = 1

    def off(self):
        self.level = 0

    high = on
    low = off

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        self.handler = handler
        self.trigger = trigger
        self.hard = hard

    def drive(self, level):
        """Test hook: an outside signal sets the pin and fires its IRQ."""
        old = self.level
        self.level = level
        edge = self.IRQ_RISING if level and not old else self.IRQ_FALLING if old and not level else 0
        if self.handler and edge & self.trigger:
            _interrupt(lambda: self.handler(self))


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, **kw):
        self.raw = 0

    def read_u16(self):
        return self.raw


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0, **kw):
        self.duty = duty_u16

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        self.duty = d


class WDT:
    started = []

    def __init__(self, id=0, timeout=5000):
        WDT.started.append(timeout)

    def feed(self):
        pass


class Encoder:
    def __init__(self, id, phase_a=None, phase_b=None, **kw):
        self.count = 0
        self.kw = kw

    def value(self, v=None):
        if v is None:
            return self.count
        self.count = v


class RTC:
    _mem = b""

    def memory(self, data=None):
        if data is None:
            return RTC._mem
        RTC._mem = bytes(data)
