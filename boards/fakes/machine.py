"""Fake `machine` for importing board modules in the Unix port (tests only).

Just enough behaviour for the tests to look at: pins keep their level and
IRQ handler, mem32 is a dict, reset() raises. Not a simulation of any chip.
It offers only what the port named in fakeport.NAME defines, with the
keyword arguments of its stubs (boards/tests/fakecheck.py checks that), so
an unknown keyword is a TypeError here as on the board.

What the real ports enforce and a host run would not:
- Hard IRQ handlers run under micropython.heap_lock(), and so does code with
  interrupts masked (disable_irq() .. enable_irq()): an allocation there is
  a MemoryError, as in a hard IRQ on the board (and with IRQs masked it
  would risk a garbage collection while the interlock IRQ waits).
- Small ints are 30-bit on the 32-bit ports: a mem32 read of a value
  >= 2**30 makes a big int (an allocation), so it raises MemoryError in
  those paths. Arithmetic on values >= 2**30 is caught by the lint
  boards/tests/irqlint.py (the Unix port's small ints are 62-bit).
- Flash writes mask interrupts for their whole duration (flash_write()).

Test hooks: disable_irq() holds back pin IRQs (Pin.drive) until enable_irq(),
as a masked hard IRQ stays pending on a chip; mem32.hooks[addr] runs after a
write to addr and Pin.read_hook after the next read of that pin, so a test can
land an "interrupt" at an exact point inside board code. now_us() is a virtual
clock that only flash_write() moves; WDT bites when a write outlasts it.
"""
import micropython

import fakeport

_PORT = fakeport.NAME

# Reset causes: only those the port's firmware defines (rp2 has two).
PWRON_RESET = 1
WDT_RESET = 3
if _PORT == "stm32":
    SOFT_RESET = 0
    HARD_RESET = 2
    DEEPSLEEP_RESET = 4
elif _PORT == "esp32":
    HARD_RESET = 2
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5

_TEST_HOOKS = {"": ("reset_cause_value", "Reset", "now_us", "flash_write", "in_irq", "watchdog_off"),
               "Pin": ("used", "drive"), "WDT": ("started", "bites")}

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


# -- heap lock: hard IRQs and masked sections (no allocation in either)

_locks = [0]  # heap_lock() depth the fake holds


def _lock():
    micropython.heap_lock()
    _locks[0] += 1


def _unlock():
    _locks[0] -= 1
    micropython.heap_unlock()


def _release():
    """Drop the fake's heap locks for its own bookkeeping; returns how many."""
    n = _locks[0]
    for _ in range(n):
        _unlock()
    return n


def _relock(n):
    for _ in range(n):
        _lock()


def in_irq():
    """True inside a hard IRQ handler or with interrupts masked."""
    return _locks[0] > 0


_masked = [0]  # depth of disable_irq() nesting
_PENDING = 16
_pend_fn = [None] * _PENDING  # IRQ handlers held back while masked
_pend_pin = [None] * _PENDING
_pend_hard = [False] * _PENDING
_pend_n = [0]


def disable_irq():
    _masked[0] += 1
    _lock()
    return _masked[0]


def enable_irq(state):
    while _masked[0] >= state:
        _masked[0] -= 1
        _unlock()
    i = 0
    while not _masked[0] and i < _pend_n[0]:
        _run(_pend_fn[i], _pend_pin[i], _pend_hard[i])
        i += 1
    if not _masked[0]:
        _pend_n[0] = 0


def _run(fn, pin, hard):
    if hard:
        _lock()
        try:
            fn(pin)
        finally:
            _unlock()
    else:
        fn(pin)


def _interrupt(fn, pin, hard):
    """Run fn(pin) as an interrupt: now, or at enable_irq() when masked."""
    if _masked[0]:
        i = _pend_n[0]
        if i >= _PENDING:
            raise RuntimeError("fake machine: more than %d pending IRQs" % _PENDING)
        _pend_fn[i] = fn
        _pend_pin[i] = pin
        _pend_hard[i] = hard
        _pend_n[0] = i + 1
    else:
        _run(fn, pin, hard)


# -- the virtual clock of flash writes and the watchdog

_now = [0]


def now_us():
    return _now[0]


def flash_write(duration_us, during=None):
    """A flash erase/program: interrupts masked for duration_us of virtual
    time (pin IRQs wait, and run when it ends; during() runs inside), and
    the watchdog, if started, bites when it has not been fed for longer than
    its timeout (raises Reset, as the chip would reset)."""
    state = disable_irq()
    if during is not None:
        n = _release()
        try:
            during()
        finally:
            _relock(n)
    _now[0] += duration_us
    w = _wdt[0]
    bitten = w is not None and _now[0] - w.fed_us > w.timeout_ms * 1000
    enable_irq(state)
    if bitten:
        WDT.bites += 1
        raise Reset()


class _Mem:
    def __init__(self):
        self.cells = {}
        self.hooks = {}  # addr -> fn(value), run after each write to addr

    def __getitem__(self, addr):
        value = self.cells.get(addr, 0)
        if _locks[0] and value >= 0x4000_0000:
            raise MemoryError("mem32 read of 0x%08x at 0x%08x: a big int on a 32-bit port" % (value, addr))
        return value

    def __setitem__(self, addr, value):
        n = _release()
        try:
            self.cells[addr] = value & 0xFFFFFFFF
            hook = self.hooks.get(addr)
            if hook:
                hook(value)
        finally:
            _relock(n)


mem32 = _Mem()


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    if _PORT != "esp32":
        ALT = 3
    if _PORT == "stm32":
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

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=0, alt=-1):
        self.init(mode, pull, value=value, alt=alt)

    def init(self, mode=-1, pull=-1, *, value=None, drive=0, alt=-1):
        if mode != -1:
            self.mode = mode
        if pull != -1:
            self.pull = pull
        if value is not None:
            self.level = 1 if value else 0

    def value(self, x=None):
        if x is None:
            level = self.level
            hook = self.read_hook
            if hook:
                self.read_hook = None
                n = _release()
                try:
                    hook()
                finally:
                    _relock(n)
            return level
        self.level = 1 if x else 0

    def on(self):
        self.level = 1

    def off(self):
        self.level = 0

    if _PORT != "esp32":
        high = on
        low = off

    if _PORT == "esp32":
        # ESP32 pin IRQs are soft only: the port has no `hard` argument.
        def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, wake=None):
            self.handler = handler
            self.trigger = trigger
            self.hard = False
    else:
        def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, hard=False):
            self.handler = handler
            self.trigger = trigger
            self.hard = hard

    def drive(self, level):
        """Test hook: an outside signal sets the pin and fires its IRQ
        (hard handlers under the heap lock)."""
        old = self.level
        self.level = level
        edge = self.IRQ_RISING if level and not old else self.IRQ_FALLING if old and not level else 0
        if self.handler and edge & self.trigger:
            _interrupt(self.handler, self, self.hard)


class ADC:
    if _PORT == "esp32":
        ATTN_11DB = 3

    def __init__(self, id, *, atten=None):
        self.raw = 0

    def read_u16(self):
        return self.raw


class PWM:
    def __init__(self, dest, *, freq=0, duty_u16=0):
        self.duty = duty_u16

    def duty_u16(self, value=None):
        if value is None:
            return self.duty
        self.duty = value


_wdt = [None]  # the chip has one watchdog: the last WDT() made


def watchdog_off():
    """Test hook: the watchdog stops, as after a power cycle (the next test's board)."""
    _wdt[0] = None


class WDT:
    started = []  # timeouts asked for, in order
    bites = 0

    def __init__(self, *, id=0, timeout=5000):
        WDT.started.append(timeout)
        _wdt[0] = self
        self.timeout_ms = timeout
        self.fed_us = _now[0]

    def feed(self):
        self.fed_us = _now[0]


if _PORT == "esp32":
    class Encoder:
        def __init__(self, id, phase_a=None, phase_b=None, *, phases=1, filter_ns=0):
            self.count = 0

        def value(self, value=None):
            if value is None:
                return self.count
            self.count = value


class RTC:
    _mem = b""

    if _PORT == "esp32":
        def memory(self, data=None):
            if data is None:
                return RTC._mem
            RTC._mem = bytes(data)
