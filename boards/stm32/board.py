"""Pyboard v1.1 (STM32F405) board: pulse, break input and count compare in timers.

What each part guarantees, and how it knows (registers: timers.py):
- Pulse width: TIM8 channel 1 (Y1) in PWM mode 2 and one-pulse mode, clocked
  at 168 MHz with prescaler 0: a width of w us is exactly 168*w ticks
  (timers.pulse_arr, tested for 100..150 us). make() refuses another clock.
  CCR1 and ARR are not preloaded (OC1PE, ARPE cleared), so the first pulse
  after boot has the configured shape.
- Break: TIM8_BKIN (X7) is wired to the far end of the interlock chain. When
  the chain opens the pin goes low and the timer clears MOE within a few
  timer clocks, with no software (RM0090 17.3.12). pyb leaves OSSI=0, so with
  MOE=0 the timer releases Y1 rather than driving it: the 10 kOhm pull-down
  holds LASER_FIRE low (OIS1/OIS1N are cleared anyway, so the idle level is
  low should OSSI ever be set). MOE stays cleared until enable(True) sets it
  again, so a trip is latched in hardware. The chain also gates the driver
  outside the MCU (docs/boards.md).
- Encoder: TIM4 in ENC_AB mode counts x4 quadrature in hardware, behind
  its input filter (a level must hold 3 us: timers.ENC_FILTER); count()
  extends its 16 bits to a full count and must be called at least once per
  32,767 counts (16 s at the 100 mm/s fast scan; wait() calls it each pass).
  The internal pull-ups are set after channel(), which leaves them off.
- Count compare: in hardware. TIM4 channel 3 in "active on match" raises
  OC3REF once when the count equals the target; OC3REF is TIM4's TRGO, which
  starts TIM8 (slave trigger mode on ITR2) with no software: the pulse starts
  a few timer clocks after the edge (estimated from RM0090, not measured). The
  count moves one step per edge, so the first equality is the target reached
  from the armed side. The time condition (not_before) is checked by wait(),
  which only then enables the trigger, with interrupts masked so that an
  interlock off() lands before or after the set-up, never inside it; a pulse
  due on time alone, or whose count was passed during the set-up, is started
  by wait() (latency: one wait() pass, estimated 10-20 us, not measured). The
  fired pulse is seen by wait() (TIM8 update flag); its time stamp is the
  time wait() saw it.
- wait() is the shared loop (shared/softarm.py): it also returns when the
  encoder changes direction (mcu.Turn).
- Stray light: while an armed pulse is running or fired but not yet collected
  by wait(), the integrator holds that pulse's charge, so stray_light() does
  not judge the photodiode then (only the lost-record latch, shared/pulselog.py).
- Interlocks: hard IRQs (falling edge) drop LASER_EN and clear MOE first,
  then switch the compare and trigger off and cancel the armed pulse: no
  allocation, register writes only, at addresses precomputed with const()
  (timers.py: a run-time sum above 2**30 would allocate a big int). enable(True) switches the compare and
  trigger off before it sets MOE, so nothing armed earlier comes back live.
- Watchdog: machine.WDT is the IWDG (cannot be stopped once started). The
  reason for machine.reset() is kept in RTC backup register BKP4R (RM0090
  26.6.20, 0x40002860), which survives a system reset.
- Store: the session store is in the 4 KB backup SRAM (backupstore.py), not
  on /flash: a write takes microseconds and erases nothing, so the 200 ms
  watchdog stays; a battery on VBAT keeps it through power loss. boot.py
  keeps /flash off USB (VCP only).
"""
import machine
import pyb
import time
from machine import Pin
from micropython import const

import mcu
from interlocks import N_INTERLOCKS
import pins
import reference
import timers as T
from backupstore import BackupStore
from boardbase import Mem32NoteBoard
from laserbase import LaserBase

_PD_UJ_PER_LSB = const(110)  # photodiode integrator: uJ per 12-bit ADC step
_PD_SETTLE_US = const(20)
_PD_RESET_US = const(10)
_STRAY_UJ = const(5_000)
_POWER_FULL_SCALE_W = const(3_000)
_POWER_PWM_HZ = const(20_000)
_COMPARE_SPAN_COUNTS = const(30_000)  # farthest target the 16-bit compare may take

_RTC_BKP4R = const(0x4000_2860)

# The reference board's tables (shared/reference.py), unchanged on this board.
LIMITS = dict(reference.LIMITS)
SETTINGS = dict(reference.SETTINGS)

_mem32 = machine.mem32


class Encoder:
    def __init__(self):
        self._tim = pyb.Timer(4, prescaler=0, period=T.ENC_MASK)
        for ch, pin in ((1, pins.ENC_A), (2, pins.ENC_B)):
            self._tim.channel(ch, pyb.Timer.ENC_AB, pin=pyb.Pin(pin, pyb.Pin.AF_PP, alt=pins.AF2_TIM4))
            # channel(pin=) re-initialises the pin as AF push-pull without a
            # pull: put the pull-up back (open-collector encoder outputs).
            pyb.Pin(pin, pyb.Pin.AF_PP, pyb.Pin.PULL_UP, alt=pins.AF2_TIM4)
        # The filter bits pyb leaves at 0: a spike on the cable is no count.
        _mem32[T.TIM4_CCMR1] = (_mem32[T.TIM4_CCMR1] & ~T.CCMR1_IC12F_MASK) | T.ENC_FILTER
        self._raw = self._tim.counter()
        self._count = 0
        _mem32[T.TIM4_CR2] = T.CR2_MMS_OC3REF

    def last_raw(self):
        """The 16-bit reading that gave the last count(): the compare target
        is computed from it, so an edge after that read cannot shift it."""
        return self._raw

    def count(self):
        raw = self._tim.counter()
        self._count += T.step16(self._raw, raw)
        self._raw = raw
        return self._count


class Laser(LaserBase):
    _limits = LIMITS
    _pd_reset_us = _PD_RESET_US
    pd_step_uj = _PD_UJ_PER_LSB  # _pd_uj() reads whole ADC steps

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
        _mem32[T.TIM8_CR1] = T.CR1_OPM  # stopped, one pulse per start; ARPE=0
        _mem32[T.TIM8_CNT] = 0
        # pyb's PWM set-up preloads CCR1 (OC1PE): with the counter stopped the
        # new value would wait for an update event and the first pulse would
        # have no output. Unpreloaded, CCR1 acts at once; UG loads every other
        # shadow register now, and the UIF it raises is cleared.
        _mem32[T.TIM8_CCMR1] &= ~T.CCMR1_OC1PE
        _mem32[T.TIM8_CCR1] = T.DELAY_TICKS
        _mem32[T.TIM8_EGR] = T.EGR_UG
        _mem32[T.TIM8_SR] = 0
        _mem32[T.TIM8_CR2] &= ~(T.CR2_OIS1 | T.CR2_OIS1N)  # pyb sets OIS1=1 (idle high)
        _mem32[T.TIM8_BDTR] &= ~T.BDTR_MOE  # output off until enable(True)
        power = pyb.Timer(2, freq=_POWER_PWM_HZ)
        self._power_ticks = power.period() + 1  # ticks per PWM period: 1-tick power steps
        self._power = power.channel(1, pyb.Timer.PWM, pin=pyb.Pin(pins.POWER_SET), pulse_width=0)
        self._adc = pyb.ADC(pyb.Pin(pins.PD_ADC))
        self._pd_reset = Pin(pins.PD_RESET, Pin.OUT, value=1)
        super().__init__()  # the pulse log, width_us
        self._armed = False
        self._waiting = False  # armed, the time condition not yet met
        self._by_compare = False  # the armed pulse was handed to the TIM4 compare
        self._not_before_us = 0
        self._target = 0
        self._dir = 0
        self._pd_reset.value(0)

    def off(self):
        """Interrupt-safe (hard IRQ): register writes and flags only."""
        self._en.value(0)  # first
        _mem32[T.TIM8_BDTR] &= ~T.BDTR_MOE
        self._trigger_off()
        self._armed = False

    def enable(self, on):
        if not on:
            self.off()
            return
        # Masked: an interlock IRQ runs its off() after these writes, never
        # between them, so it always has the last word.
        irq = machine.disable_irq()
        try:
            if self._may_enable():
                # A compare left live by an earlier arm must not come back with
                # MOE: switch it off; wait() hands a still-armed pulse over again.
                self._trigger_off()
                if self._armed and not self._fired():
                    self._waiting = True
                _mem32[T.TIM8_BDTR] |= T.BDTR_MOE
                self._en.value(1)
        finally:
            machine.enable_irq(irq)

    def configure(self, width_us, power_w):
        super().configure(width_us, power_w)  # checks LIMITS first
        _mem32[T.TIM8_ARR] = T.pulse_arr(width_us, T.TIMER_HZ)
        self._power.pulse_width(power_w * self._power_ticks // _POWER_FULL_SCALE_W)

    def arm(self, not_before_us, target, direction):
        self._trigger_off()
        self._not_before_us = not_before_us
        self._target = target
        self._dir = direction
        self._by_compare = False
        self._armed = True
        self._waiting = True
        _mem32[T.TIM8_SR] = 0  # UIF marks the end of the next pulse

    def disarm(self):
        self._trigger_off()
        self._armed = False

    def armed(self):
        return self._armed

    def stray_light(self):
        uj = self._pd_uj()  # read first: a pulse starting after it is not in it
        if self._armed and self._fired():
            return self._log.lost  # the integrator holds this pulse until poll() collects it
        return self._log.lost or uj > _STRAY_UJ

    def _pd_uj(self):
        return self._adc.read() * _PD_UJ_PER_LSB

    def _fired(self):
        """TIM8 is running a pulse, or ran one not yet collected."""
        return bool(_mem32[T.TIM8_CR1] & T.CR1_CEN or _mem32[T.TIM8_SR] & T.SR_UIF)

    def _trigger_off(self):
        """No trigger can start TIM8 and OC3REF is held inactive. Register
        writes only (called from off() in a hard IRQ)."""
        _mem32[T.TIM8_SMCR] = 0
        ccmr2 = _mem32[T.TIM4_CCMR2] & ~T.CCMR2_OC3M_MASK
        _mem32[T.TIM4_CCMR2] = ccmr2 | T.OC3M_FORCE_LOW

    def _start(self):
        _mem32[T.TIM8_CR1] = T.CR1_OPM | T.CR1_CEN

    def check(self, count):
        """softarm.wait()'s hook (count unused: the hand-over reads its own,
        with interrupts masked)."""
        return self.poll(time.ticks_us())

    def poll(self, now):
        """Called by wait(): meet the time condition, start time-only pulses,
        and collect a fired pulse. True when a pulse was recorded."""
        if self._waiting and not self._hand_over(now):
            return False
        if not _mem32[T.TIM8_SR] & T.SR_UIF:
            return False
        t = time.ticks_us()
        self._trigger_off()
        self._armed = False
        count = self._target if self._by_compare else self._enc.count()
        self._record(t, count, _PD_SETTLE_US)  # the pulse has ended (UIF)
        return True

    def _hand_over(self, now):
        """Once not_before has come: start the pulse, or hand its count to the
        compare. False while it must still wait. Interrupts are masked so an
        interlock off() cannot land between the checks and the writes."""
        if time.ticks_diff(now, self._not_before_us) < 0:
            return False
        irq = machine.disable_irq()
        try:
            if not self._armed or not self._en.value():
                return False
            count = self._enc.count()
            if (count - self._target) * self._dir >= 0:
                self._start()  # reached already, or time only
            elif -_COMPARE_SPAN_COUNTS < self._target - count < _COMPARE_SPAN_COUNTS:
                self._compare_on(count)
            else:
                return False  # too far for 16 bits: check again later
            self._waiting = False
            return True
        finally:
            machine.enable_irq(irq)

    def _compare_on(self, count):
        """Hand the count condition to TIM4 channel 3 -> TRGO -> TIM8 trigger."""
        raw_target = (self._enc.last_raw() + self._target - count) & T.ENC_MASK
        _mem32[T.TIM4_CCR3] = raw_target
        _mem32[T.TIM8_SMCR] = T.SMCR_TRIGGER_ITR2
        ccmr2 = _mem32[T.TIM4_CCMR2] & ~T.CCMR2_OC3M_MASK
        _mem32[T.TIM4_CCMR2] = ccmr2 | T.OC3M_ON_MATCH
        self._by_compare = True
        # The count may have passed the target while this was set up: then no
        # match comes. Switch the trigger off first, so the test below cannot
        # race it; if TIM8 did not start, start it here.
        if (self._enc.count() - self._target) * self._dir >= 0:
            self._trigger_off()
            if not self._fired():
                self._by_compare = False
                self._start()


class Inputs(mcu.Inputs):
    def __init__(self, board):
        super().__init__(board, pins.INPUTS)
        # Hard IRQs: _trip runs at once; laser.off() is registers and flags only.
        for i in range(N_INTERLOCKS):
            self._pins[i].irq(self._tripper(i), Pin.IRQ_FALLING, hard=True)
        self._pins[N_INTERLOCKS].irq(self._wake, Pin.IRQ_FALLING | Pin.IRQ_RISING, hard=True)


class Link:
    """USB-CDC through pyb.USB_VCP: any(), readinto() and write() never block
    (send() with timeout 0 takes what fits in the VCP's transmit buffer)."""

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
        return self._vcp.send(buf, timeout=0)


class Board(Mem32NoteBoard):
    name = "stm32"
    limits = LIMITS
    settings = SETTINGS
    _note_addr = _RTC_BKP4R  # where reboot() keeps its cause (boardbase.Mem32NoteBoard)

    def __init__(self):
        pyb.RTC()  # the backup domain (and BKP4R) becomes writable
        super().__init__(Encoder, Laser, Inputs, pins.INDICATOR, Link)

    def _make_store(self, store_folder):
        return BackupStore()  # no flash erase during a session (backupstore.py)

    def _port_cause(self):
        return mcu.cause_of(machine.reset_cause(), soft=(machine.SOFT_RESET,))


def make():
    return Board()
