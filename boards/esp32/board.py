"""ESP32-S3 board: RMT pulse, PCNT encoder, soft interrupts for interlocks.

What each part guarantees, and how it knows:
- Port version: MicroPython >= 1.26 (machine.Encoder first ships in v1.26.0);
  make() checks sys.implementation.version and refuses an older port.
- Pulse width: RMT channel 0 at 1 MHz: a width of w us is w RMT ticks, exact
  for 100..150 us (rmt_ticks()). From v1.27 the resolution is asked for as
  resolution_hz=1_000_000 (clock_div is deprecated there); on v1.26 it is
  clock_div 80 of the 80 MHz source, checked by make(). write_pulses()
  starts it from software: the start lags the call by the driver's set-up
  time (tens of us, estimated, not measured). The port's first write_pulses()
  allocates (rmt_enable, m_realloc), so make() does one warm-up write of a
  low level, which emits nothing.
- Gating: LASER_FIRE reaches the driver only through an AND gate with
  LASER_EN and the hardware interlock chain (docs/boards.md).
- Encoder: machine.Encoder (PCNT unit 0, x4, 1 us glitch filter) counts in
  hardware; its 16-bit overflows are extended by the port.
- Count/time compare: in software (shared/softarm.py) in wait(), as on rp2;
  latency one wait() pass while the core idles, a whole control step when it
  is busy. Not suitable where one-count pacing must be guaranteed.
- Interlocks: ESP32 pin interrupts are never hard in MicroPython: the ISR
  only schedules the handler, which runs between bytecodes of the main
  program. Its latency is usually tens of us but unbounded in principle: a
  garbage collection (milliseconds), a flash write (the store: the cache is
  off for tens of ms) or a blocking USB write delay it. That is why the
  laser-enable chain is cut in hardware by the interlocks (docs/boards.md)
  and this handler is only the second line: it drops LASER_EN and cancels
  the armed pulse. off() does not cut a pulse already in the RMT (rp2 does):
  it runs to its end, stopped at the AND gate by the dropped LASER_EN.
- Photodiode: ADC1 at 11 dB, which reads up to about 3.1 V, not the
  integrator's 3.3 V: the carrier scales it to at most 2.8 V, and a reading
  near the top (>= _PD_CLIP_LSB) counts as over range, never as a pulse.
- Fire window: a soft IRQ cannot be masked, so check() reads LASER_EN again
  right before write_pulses(). A handler that runs between that read and the
  RMT start (a few bytecodes; the estimated window is tens of us) does not
  stop the pulse in software; the AND gate and the chain do.
- Watchdog: machine.WDT (the task watchdog; cannot be stopped once started).
  The reason for machine.reset() is kept in RTC memory (survives a software
  reset, not a power cycle). The port reports machine.reset() and a panic
  both as HARD_RESET: without a note that reads as RESET_EXCEPTION.
"""
import esp32
import machine
import sys
import time
from machine import Pin
from micropython import const

import mcu
from interlocks import N_INTERLOCKS
import pins
import reference
from boardbase import BoardBase
from laserbase import SoftArmLaser
from stdiolink import StdioLink

_RMT_HZ = const(1_000_000)  # 1 us per RMT tick
_RMT_CLOCK_DIV = const(80)  # v1.26 only: 80 MHz source / 80
_PORT_MIN = (1, 26)  # machine.Encoder
_PORT_RESOLUTION_HZ = (1, 27)  # RMT(resolution_hz=); clock_div deprecated from here
_PD_UJ_PER_LSB = const(110)  # photodiode integrator: uJ per 12-bit ADC step
# The ADC at 11 dB reads up to about 3.1 V and flattens before that; the
# integrator swings to 3.3 V. A divider scales it to at most 2.8 V at the pin
# (docs/boards.md), and a reading this close to the top is clipped: its
# energy is unknown, so it reads as more than any pulse (the core's energy
# check and the stray-light check then fault) instead of a plausible value.
_PD_CLIP_LSB = const(3_900)  # about 2.95 V at 11 dB
_PD_OVER_RANGE_UJ = const(1 << 28)
_PD_SETTLE_US = const(20)
_PD_RESET_US = const(10)
_STRAY_UJ = const(5_000)
_POWER_FULL_SCALE_W = const(3_000)
_POWER_PWM_HZ = const(20_000)
_ENCODER_FILTER_NS = const(1_000)
_CAUSE_TAG = b"hilt"

# The reference board's tables (shared/reference.py); the watchdog is longer here.
LIMITS = dict(reference.LIMITS)
SETTINGS = dict(reference.SETTINGS)
# A store write masks every interrupt while the flash erases or programs,
# and the watchdog cannot be fed meanwhile. On littlefs one write takes at
# most 1 sector erase and 9 page programs (esp32_logic.py counts them over
# 2000 writes): 400 ms + 9 x 3 ms = 427 ms at the module's SPI flash's
# datasheet maxima (45 ms typical per erase), plus littlefs's own work (not
# measured on this chip; 30 ms at most on the emulated rp2). LASER_EN is low during the write (storeguard.py),
# so a longer watchdog delays no trip; it still resets a stalled loop.
SETTINGS["wdt_timeout_ms"] = 1000


def rmt_ticks(width_us, rmt_hz):
    """RMT duration for a pulse of width_us."""
    return width_us * rmt_hz // 1_000_000


def check_port(version):
    """Refuse a MicroPython too old for this board (sys.implementation.version)."""
    if tuple(version[:2]) < _PORT_MIN:
        raise RuntimeError("esp32 board needs MicroPython >= %d.%d (machine.Encoder); this is %d.%d"
                           % (_PORT_MIN + tuple(version[:2])))


def make_rmt(pin, version):
    if tuple(version[:2]) >= _PORT_RESOLUTION_HZ:
        return esp32.RMT(0, pin=pin, resolution_hz=_RMT_HZ, idle_level=False)
    if esp32.RMT.source_freq() // _RMT_CLOCK_DIV != _RMT_HZ:
        raise RuntimeError("RMT tick is not 1 us")
    return esp32.RMT(0, pin=pin, clock_div=_RMT_CLOCK_DIV, idle_level=False)


class Laser(SoftArmLaser):
    _limits = LIMITS
    _pd_uj_per_lsb = _PD_UJ_PER_LSB
    _stray_uj = _STRAY_UJ
    _pd_reset_us = _PD_RESET_US

    def __init__(self, encoder):
        self._en = Pin(pins.LASER_EN, Pin.OUT, value=0)  # first (SR-1)
        self._enc = encoder
        self._rmt = make_rmt(Pin(pins.LASER_FIRE), sys.implementation.version)
        self._durations = [rmt_ticks(100, _RMT_HZ)]
        # Warm-up: the port allocates on the first write_pulses(); do it now,
        # with LASER_EN low and a low level (data False), so nothing is emitted.
        self._rmt.write_pulses([1], False)
        self._rmt.wait_done(timeout=10)
        self._adc = machine.ADC(Pin(pins.PD_ADC), atten=machine.ADC.ATTN_11DB)
        self._pd_reset = Pin(pins.PD_RESET, Pin.OUT, value=1)
        self._power = machine.PWM(Pin(pins.POWER_SET), freq=_POWER_PWM_HZ, duty_u16=0)
        self._interlocks = tuple(Pin(p) for p in pins.INTERLOCKS)
        super().__init__()  # the arm, the pulse log, width_us
        self._pd_reset.value(0)

    def _pd_uj(self):
        lsb = self._adc.read_u16() >> 4
        if lsb >= _PD_CLIP_LSB:
            return _PD_OVER_RANGE_UJ  # clipped: unknown energy, never a plausible one
        return lsb * _PD_UJ_PER_LSB

    def off(self):
        self._en.value(0)  # a pulse already in the RMT runs on; the AND gate stops it
        self._arm.armed = False

    def enable(self, on):
        if on and not self._may_enable():
            return
        self._en.value(1 if on else 0)
        if on and not self._may_enable():  # one that opened during the write wins
            self.off()

    def configure(self, width_us, power_w):
        super().configure(width_us, power_w)  # checks LIMITS first
        self._durations[0] = rmt_ticks(width_us, _RMT_HZ)
        self._power.duty_u16(power_w * 65535 // _POWER_FULL_SCALE_W)

    def check(self, count):
        now = time.ticks_us()
        if not self._en.value() or not self._arm.due(now, count):
            return False
        self._arm.armed = False
        # The soft interlock handler may have run since the check above:
        # look at the enable line once more, as late as Python allows.
        if not self._en.value():
            return False
        self._rmt.write_pulses(self._durations, True)
        t = time.ticks_us()
        self._record(t, count, self.width_us + _PD_SETTLE_US)  # after the pulse has ended
        return True


class Encoder:
    def __init__(self):
        self._pcnt = machine.Encoder(0, phase_a=Pin(pins.ENC_A, Pin.IN, Pin.PULL_UP),
                                     phase_b=Pin(pins.ENC_B, Pin.IN, Pin.PULL_UP),
                                     phases=4, filter_ns=_ENCODER_FILTER_NS)

    def count(self):
        return self._pcnt.value()


class Inputs(mcu.Inputs):
    def __init__(self, board):
        super().__init__(board, pins.INPUTS)
        for i in range(N_INTERLOCKS):
            self._pins[i].irq(self._tripper(i), Pin.IRQ_FALLING)  # soft: scheduled, see the docstring
        self._pins[N_INTERLOCKS].irq(self._wake, Pin.IRQ_FALLING | Pin.IRQ_RISING)


class Board(BoardBase):
    name = "esp32"
    limits = LIMITS
    settings = SETTINGS

    def __init__(self):
        check_port(sys.implementation.version)
        super().__init__(Encoder, Laser, Inputs, pins.INDICATOR, StdioLink)
        self._rtc = machine.RTC()

    def _port_cause(self):
        """The port reports machine.reset() and a panic alike as HARD_RESET
        (esp_reset_reason ESP_RST_SW and ESP_RST_PANIC). The firmware's own
        reboot() leaves a note first, so one without a note is a crash (or a
        reset typed at the REPL, safe mode only): read as RESET_EXCEPTION,
        which latches a fault at boot, never as a power cycle."""
        return mcu.cause_of(machine.reset_cause(), soft=(machine.SOFT_RESET,), crash=(machine.HARD_RESET,))

    def _take_note(self):
        note = self._rtc.memory()
        self._rtc.memory(b"")
        if len(note) == 5 and note[:4] == _CAUSE_TAG:
            return note[4]
        return None

    def _keep_note(self, cause):
        self._rtc.memory(_CAUSE_TAG + bytes((cause,)))


def make():
    return Board()
