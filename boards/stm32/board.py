"""Pyboard v1.1 (STM32F405) board: pulse, break input and count compare in timers.

What each part guarantees, and how it knows (registers: timers.py):
- Pulse width: TIM8 channel 1 (Y1) in PWM mode 2 and one-pulse mode, clocked
  at 168 MHz with prescaler 0: a width of w us is exactly 168*w ticks
  (timers.pulse_arr, tested for 100..150 us). make() refuses another clock.
- Break: TIM8_BKIN (X7) is wired to the far end of the interlock chain. When
  the chain opens the pin goes low and the timer drops its output within a
  few timer clocks, with no software (RM0090 17.3.12); MOE stays cleared until
  enable(True) sets it again, so a trip is latched in hardware. The chain also
  gates the driver outside the MCU (docs/boards.md).
- Encoder: TIM4 in ENC_AB mode counts x4 quadrature in hardware; count()
  extends its 16 bits to a full count and must be called at least once per
  32,767 counts (16 s at the 100 mm/s fast scan; the core calls it each step).
- Count compare: in hardware. TIM4 channel 3 in "active on match" raises
  OC3REF once when the count equals the target; OC3REF is TIM4's TRGO, which
  starts TIM8 (slave trigger mode on ITR2): the pulse starts two timer clocks
  after the edge, with no software. The count moves one step per edge, so the
  first equality is the target reached from the armed side. The time condition
  (not_before) is checked by wait(), which only then enables the trigger; a
  pulse due on time alone is started by wait() (latency: one wait() pass,
  estimated 10-20 us, not measured). The fired pulse is seen by wait() (TIM8
  update flag); its time stamp is the time wait() saw it.
- Interlocks: hard IRQs (falling edge) drop LASER_EN and clear MOE first,
  then cancel the armed pulse: no allocation, integer and register work only.
- Watchdog: machine.WDT is the IWDG (cannot be stopped once started). The
  reason for machine.reset() is kept in RTC backup register BKP4R (RM0090
  26.6.20, 0x40002860), which survives a system reset.
"""
import machine
import pyb
import time
from machine import Pin
from micropython import const

import mcu
import pins
import reference
import timers as T
from filestore import FileStore
from pulselog import PulseLog

_PD_UJ_PER_LSB = const(110)  # photodiode integrator: uJ per 12-bit ADC step
_PD_SETTLE_US = const(20)
_PD_RESET_US = const(10)
_STRAY_UJ = const(5_000)
_POWER_FULL_SCALE_W = const(3_000)
_POWER_PWM_HZ = const(20_000)
_COMPARE_SPAN = const(30_000)  # farthest target the 16-bit compare may take

_RTC_BKP4R = const(0x4000_2860)
_CAUSE_MAGIC = const(0x1A5E_0000)

# The reference board's tables (shared/reference.py), unchanged on this board.
LIMITS = dict(reference.LIMITS)
SETTINGS = dict(reference.SETTINGS)

_mem32 = machine.mem32


class Encoder:
    def __init__(self):
        self._tim = pyb.Timer(4, prescaler=0, period=T.ENC_MASK)
        self._tim.channel(1, pyb.Timer.ENC_AB, pin=pyb.Pin(pins.ENC_A, pyb.Pin.ALT, alt=pins.AF2_TIM4))
        self._tim.channel(2, pyb.Timer.ENC_AB, pin=pyb.Pin(pins.ENC_B, pyb.Pin.ALT, alt=pins.AF2_TIM4))
        self._raw = self._tim.counter()
        self._count = 0
        _mem32[T.TIM4 + T.CR2] = T.CR2_MMS_OC3REF

    def raw(self):
        return self._tim.counter()

    def count(self):
        raw = self._tim.counter()
        self._count += T.step16(self._raw, raw)
        self._raw = raw
        return self._count


class Laser:
    def __init__(self, encoder):
        self._en = Pin(pins.LASER_EN, Pin.OUT, value=0)  # first (SR-1)
        self._enc = encoder
        self._interlocks = tuple(Pin(p) for p in pins.INTERLOCKS)
        self._brk = pyb.Pin(pins.LASER_BRK, pyb.Pin.ALT, pyb.Pin.PULL_DOWN, alt=pins.AF3_TIM8)
        # CCR1 above ARR until the counter is stopped: no edge while pyb starts it.
        # The stub's overloads leave out `brk`, which pyb.Timer.init documents.
        tim = pyb.Timer(8, prescaler=0, period=T.pulse_arr(100, T.TIMER_HZ),  # type: ignore[call-overload]
                        brk=pyb.Timer.BRK_LOW)
        if tim.source_freq() != T.TIMER_HZ:
            raise RuntimeError("TIM8 clock is not %d Hz" % T.TIMER_HZ)
        tim.channel(1, pyb.Timer.PWM_INVERTED, pin=pyb.Pin(pins.LASER_FIRE), pulse_width=0xFFFF)
        _mem32[T.TIM8 + T.CR1] = T.CR1_OPM  # stopped, one pulse per start
        _mem32[T.TIM8 + T.CNT] = 0
        _mem32[T.TIM8 + T.CCR1] = T.DELAY_TICKS
        _mem32[T.TIM8 + T.BDTR] &= ~T.BDTR_MOE  # output off until enable(True)
        self._power = pyb.Timer(2, freq=_POWER_PWM_HZ).channel(
            1, pyb.Timer.PWM, pin=pyb.Pin(pins.POWER_SET), pulse_width_percent=0)
        self._adc = pyb.ADC(pyb.Pin(pins.PD_ADC))
        self._pd_reset = Pin(pins.PD_RESET, Pin.OUT, value=1)
        self._log = PulseLog()
        self._armed = False
        self._waiting = False  # armed, the time condition not yet met
        self._nb = 0
        self._target = 0
        self._dir = 0
        self.width_us = 0
        self._pd_reset.value(0)

    def off(self):
        self._en.value(0)  # first
        _mem32[T.TIM8 + T.BDTR] &= ~T.BDTR_MOE
        _mem32[T.TIM8 + T.SMCR] = 0  # no trigger can start a pulse
        self._armed = False

    def enable(self, on):
        if on:
            if not mcu.closed(self._interlocks):
                return
            _mem32[T.TIM8 + T.SR] = 0  # clear a latched break flag (BIF)
            _mem32[T.TIM8 + T.BDTR] |= T.BDTR_MOE
            self._en.value(1)
            # An interlock IRQ during the writes above would be undone by them:
            # look again, and drop everything if one opened.
            if not mcu.closed(self._interlocks):
                self.off()
        else:
            self.off()

    def configure(self, width_us, power_w):
        mcu.check_pulse(LIMITS, width_us, power_w)
        self.width_us = width_us
        _mem32[T.TIM8 + T.ARR] = T.pulse_arr(width_us, T.TIMER_HZ)
        self._power.pulse_width_percent(power_w * 100 // _POWER_FULL_SCALE_W)

    def arm(self, not_before_us, target, direction):
        self._trigger_off()
        self._nb = not_before_us
        self._target = target
        self._dir = direction
        self._armed = True
        self._waiting = True
        _mem32[T.TIM8 + T.SR] = 0  # UIF marks the end of the next pulse

    def disarm(self):
        self._trigger_off()
        self._armed = False

    def armed(self):
        return self._armed

    def take_pulse(self, rec):
        return self._log.take(rec)

    def stray_light(self):
        return self._log.lost or self._pd_uj() > _STRAY_UJ

    def _pd_uj(self):
        return self._adc.read() * _PD_UJ_PER_LSB

    def _trigger_off(self):
        _mem32[T.TIM8 + T.SMCR] = 0
        ccmr2 = _mem32[T.TIM4 + T.CCMR2] & ~T.CCMR2_OC3M_MASK
        _mem32[T.TIM4 + T.CCMR2] = ccmr2 | T.OC3M_FORCE_LOW

    def _start(self):
        _mem32[T.TIM8 + T.CR1] = T.CR1_OPM | T.CR1_CEN

    def poll(self, now):
        """Called by wait(): meet the time condition, start time-only pulses,
        and collect a fired pulse. True when a pulse was recorded."""
        if self._waiting:
            if time.ticks_diff(now, self._nb) < 0 or not self._en.value():
                return False
            self._waiting = False
            count = self._enc.count()
            if (count - self._target) * self._dir >= 0:
                self._start()  # reached already, or time only
            elif -_COMPARE_SPAN < self._target - count < _COMPARE_SPAN:
                self._compare_on(count)
            else:
                self._waiting = True  # too far for 16 bits: check again later
                return False
        if not _mem32[T.TIM8 + T.SR] & T.SR_UIF:
            return False
        t = time.ticks_us()
        self._trigger_off()
        self._armed = False
        hw = _mem32[T.TIM4 + T.SR] & T.SR_CC3IF
        count = self._target if hw and self._dir else self._enc.count()
        time.sleep_us(_PD_SETTLE_US)
        uj = self._pd_uj()
        self._pd_reset.value(1)
        time.sleep_us(_PD_RESET_US)
        self._pd_reset.value(0)
        self._log.push(t, count, uj)
        return True

    def _compare_on(self, count):
        """Hand the count condition to TIM4 channel 3 -> TRGO -> TIM8 trigger."""
        raw_target = (self._enc.raw() + self._target - count) & T.ENC_MASK
        _mem32[T.TIM4 + T.CCR3] = raw_target
        _mem32[T.TIM4 + T.SR] = ~T.SR_CC3IF & T.ENC_MASK  # rc_w0: clear CC3IF only
        _mem32[T.TIM8 + T.SMCR] = T.SMCR_TRIGGER_ITR2
        ccmr2 = _mem32[T.TIM4 + T.CCMR2] & ~T.CCMR2_OC3M_MASK
        _mem32[T.TIM4 + T.CCMR2] = ccmr2 | T.OC3M_ON_MATCH
        # The count may have passed the target while this was set up: then no
        # match comes, and the pulse is started here instead.
        if (self._enc.count() - self._target) * self._dir >= 0 and not _mem32[T.TIM4 + T.SR] & T.SR_CC3IF:
            _mem32[T.TIM8 + T.SMCR] = 0
            if not _mem32[T.TIM8 + T.CR1] & T.CR1_CEN:
                self._start()


class Inputs(mcu.Inputs):
    def __init__(self, board):
        super().__init__(board, pins.INPUTS)
        # Hard IRQs: _trip runs at once; laser.off() is registers and flags only.
        for p in self._pins[:6]:
            p.irq(self._trip, Pin.IRQ_FALLING, hard=True)
        self._pins[6].irq(self._wake, Pin.IRQ_FALLING | Pin.IRQ_RISING, hard=True)


class Link:
    """USB-CDC through pyb.USB_VCP: any() and readinto() never block."""

    def __init__(self):
        self._vcp = pyb.USB_VCP()
        self._vcp.setinterrupt(-1)  # 0x03 is protocol data, not Ctrl-C

    def any(self):
        return self._vcp.any()

    def readinto(self, buf):
        if not self._vcp.any():
            return 0
        return self._vcp.readinto(buf) or 0

    def write(self, buf):
        self._vcp.write(buf)


class Board:
    name = "stm32"
    limits = LIMITS
    settings = SETTINGS

    def __init__(self):
        self.woken = False
        pyb.RTC()  # the backup domain (and BKP4R) becomes writable
        self.encoder = Encoder()
        self.laser = Laser(self.encoder)
        self.inputs = Inputs(self)
        self.indicator = mcu.Indicator(pins.INDICATOR)
        self.link = Link()
        self.store = FileStore("/flash/")
        self.wdt = mcu.Wdt()

    def ticks_us(self):
        return time.ticks_us()

    def wait(self, deadline_us):
        las = self.laser
        while True:
            if self.woken:
                self.woken = False
                return
            now = time.ticks_us()
            if las.armed() and las.poll(now):
                return
            if self.link.any() or time.ticks_diff(deadline_us, now) <= 0:
                return

    def reset_cause(self):
        note = _mem32[_RTC_BKP4R]
        _mem32[_RTC_BKP4R] = 0
        if note & 0xFFFF0000 == _CAUSE_MAGIC:
            return note & 0xFFFF
        return mcu.cause_of(machine.reset_cause())

    def reboot(self, cause):
        self.laser.off()
        _mem32[_RTC_BKP4R] = _CAUSE_MAGIC | cause
        machine.reset()


def make():
    return Board()
