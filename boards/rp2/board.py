"""Raspberry Pi Pico (RP2040) board: the HAL on PIO, GPIO interrupts and the watchdog.

What each part guarantees, and how it knows:
- Pulse width: PIO1 SM0 (pio.pulse) runs at 5 MHz from the integer divider
  25 of the 125 MHz system clock, which make() sets and checks; a width of
  w us is exactly 5*w cycles (pio.width_word, tested for 100..150 us). The
  pulse starts within 3 PIO cycles (0.6 us) of the FIFO push.
- Gating: LASER_FIRE reaches the laser driver only through an AND gate with
  LASER_EN and the hardware interlock chain (docs/boards.md), so the MCU alone
  can never emit; laser.off() drops LASER_EN with one GPIO write.
- Encoder: PIO0 SM0 (pio.quadrature) counts x4 quadrature with no CPU time
  per edge; edges 100 ns apart are still counted. count() drains the RX
  FIFO and takes the next push; the SM refills the FIFO while the loop
  drains it, so the value is a few us old (estimated, not measured). Each
  count change also sets the SM's IRQ flag: the count IRQ below.
- Count/time compare: in software (shared/softarm.py, SoftArm.due), from
  two places. (1) The count IRQ: the port's PIO handler acknowledges the
  flag and schedules Laser.track, which runs at the core's next bytecode
  boundary, in the middle of a control step too, and pushes the armed pulse
  once its count is reached. It is soft, not hard, for SR-2: it fires
  nothing while a byte (maybe a stop '!') waits on the link, and the only
  way to see one, a zero-timeout poll of stdin, runs the port's USB stack
  (TinyUSB's task), which is not reentrant: a hard IRQ landing in the
  core's own poll or write would corrupt it. Nor does it fire in a control
  step that has read a byte (Link.seen, cleared by wait()): the core acts
  on a '!' it read (laser.off()) before any pulse, as when only wait()
  fired. The price of soft: the callback waits for the running bytecode,
  so a long C call (a garbage collection, a string format) delays it; a
  flash write masks the PIO interrupt too, but LASER_EN is low and the
  pulse disarmed then (storeguard.py, firmware/emission.py). Measured on
  the emulated chip (make bench ARGS="rp2emu --quick", 3.3 mm spacing):
  at most 1 count late at 30 and at 90 mm/s (one count is 50 um, 555 us at
  90 mm/s), against 2 and 9 when only wait() compared; in 2 of 5 runs one
  pulse was 2 or 3 counts late, after a session-store write where the
  bench could tell. No pulse began after a '!' reached the chip. Each
  callback costs core time: the emitting loop's period went from p50 5.2 /
  p99 14.0 ms to 5.5-5.7 / 15.9-16.4 ms (1,800 counts/s at 90 mm/s). (2) wait(), where the core idles: each pass
  checks, so a pulse gated by time alone (not_before, trigger points)
  fires within one pass (estimated 15-30 us). wait() also returns when the
  encoder changes direction (mcu.Turn).
  A pulse the IRQ pushed is recorded by the next wait() pass or
  take_pulse(): the photodiode read once width + _PD_SETTLE_US have passed
  since the push, logged with the push's time and count. Until then armed()
  stays true, so the core cannot arm the next pulse on a dose that misses
  it (SR-6), and stray_light() does not judge the integrator that holds it.
  Both paths push through _send(): the enable check, the due check and the
  FIFO push run with interrupts masked, so an interlock off() lands before
  the check (nothing is pushed) or after the push (its set-low ends the
  pulse); the count IRQ never raises LASER_EN, so it cannot undo a trip.
  Masking holds back the PIO interrupt but not a callback scheduled before
  it, which may run between two bytecodes of the push: hold keeps it out,
  so one arm makes one pulse.
- Interlocks: hard IRQs on the falling edge (interlock opening). The handler
  first writes LASER_EN low, then cancels the armed pulse and wakes wait();
  it allocates nothing. Its cost is the MicroPython hard-IRQ entry (a few us)
  plus one pin write. Closing is not urgent: the core polls and debounces it.
- Photodiode: an integrator on ADC0, read after each pulse has ended
  (width + _PD_SETTLE_US), then discharged by PD_RESET; stray light is the
  integrator reading above _STRAY_UJ with no pulse commanded.
- Watchdog: machine.WDT (RP2040 maximum 8,388 ms). The reset reason is kept
  in watchdog scratch register 0 across machine.reset() (RP2040 datasheet
  section 4.7, WATCHDOG_BASE 0x40058000, SCRATCH0 at +0x0C). The port
  implements machine.reset() with the watchdog (pico-sdk watchdog_reboot),
  so machine.reset_cause() says WDT_RESET after a REPL/mpremote reset too,
  and again after later soft resets. A bite is therefore counted only when
  REASON (+0x08) names the watchdog and SCRATCH4 (+0x1C) holds the marker
  pico-sdk's watchdog_enable() (used by machine.WDT) writes, 0x6AB73121, as
  its watchdog_enable_caused_reboot() does; reset_cause() then clears
  SCRATCH4 so a later soft reset is not a second bite. Any other watchdog
  reset reads as RESET_SOFT. Limit: a bite after reset_cause() and before the
  core restarts the watchdog (which writes the marker again) reads as soft.
"""
from array import array
import machine
import time
from machine import Pin
from micropython import const
import rp2

import hal
import mcu
from interlocks import N_INTERLOCKS
import pins
import pio
import reference
from boardbase import Mem32NoteBoard
from laserbase import SoftArmLaser
from stdiolink import StdioLink

# Calibration (set on the bench, docs/boards.md bring-up step 6)
_PD_UJ_PER_LSB = const(110)  # photodiode integrator: uJ per 12-bit ADC step
_PD_SETTLE_US = const(20)  # integrator settles after the pulse ends
_PD_RESET_US = const(10)  # discharge time of the integrator
_STRAY_UJ = const(5_000)  # integrator reading that counts as light
_POWER_FULL_SCALE_W = const(3_000)  # driver setpoint at 100 % PWM duty
_POWER_PWM_HZ = const(20_000)
_RX_FIFO_DEPTH = const(4)  # a state machine's RX FIFO, not joined

_WATCHDOG_REASON = const(0x40058008)  # bit 0 TIMER, bit 1 FORCE; 0 after a power-on/RUN reset
_WATCHDOG_SCRATCH0 = const(0x4005800C)
_WATCHDOG_SCRATCH4 = const(0x4005801C)
_SDK_WDT_MAGIC = const(0x6AB73121)  # pico-sdk WATCHDOG_NON_REBOOT_MAGIC, written by watchdog_enable()

# The reference board's tables (shared/reference.py); the watchdog is longer here.
LIMITS = dict(reference.LIMITS)
SETTINGS = dict(reference.SETTINGS)
# A store write masks every interrupt while the flash erases or programs,
# and the watchdog cannot be fed meanwhile. On littlefs one write takes at
# most 2 sector erases and 5 page programs (rp2_logic.py counts them over 2000
# writes): 2 x 400 ms + 5 x 3 ms = 815 ms at the Pico's W25Q16JV's datasheet maxima
# (45 ms typical per erase), plus littlefs's own work: at most 30 ms on the
# emulated chip with the store in its own folder (filestore.py; 297 ms when
# it was in the root). LASER_EN is low during the write (storeguard.py),
# so a longer watchdog delays no trip; it still resets a stalled loop.
SETTINGS["wdt_timeout_ms"] = 1000


class Link(StdioLink):
    """The USB-CDC link (shared/stdiolink.py) that also tells the count IRQ
    the core may have a byte to act on: any() notes each byte it finds
    waiting, and readinto() takes a byte only after any() has found it, so
    the IRQ sees a byte waiting or noted, never neither. It then fires
    nothing until the core's next wait(), so a '!' the core has read but not
    yet acted on (laser.off()) still stops the next pulse (SR-2)."""

    def __init__(self):
        super().__init__()
        self.seen = False  # a byte found waiting since the core's last wait()

    def any(self):
        if super().any():
            self.seen = True  # before the byte can be read
            return True
        return False


class Laser(SoftArmLaser):
    _link: Link  # set by start(): the count IRQ fires nothing while the core has input to act on
    _limits = LIMITS
    _pd_uj_per_lsb = _PD_UJ_PER_LSB
    _stray_uj = _STRAY_UJ
    _pd_reset_us = _PD_RESET_US

    def __init__(self, encoder):
        self._enc = encoder
        # Enable and fire low before anything else (SR-1).
        self._en = Pin(pins.LASER_EN, Pin.OUT, value=0)
        Pin(pins.LASER_FIRE, Pin.OUT, value=0)
        self._sm = rp2.StateMachine(4, pio.pulse, freq=pio.PULSE_HZ, set_base=Pin(pins.LASER_FIRE))
        self._sm.active(1)
        self._set_low = rp2.asm_pio_encode("set(pins, 0)", 0)
        self._adc = machine.ADC(pins.PD_ADC)
        self._pd_reset = Pin(pins.PD_RESET, Pin.OUT, value=1)  # start discharged
        self._power = machine.PWM(Pin(pins.POWER_SET), freq=_POWER_PWM_HZ, duty_u16=0)
        super().__init__()  # the arm, the pulse log, width_us
        self._interlocks = tuple(Pin(p) for p in pins.INTERLOCKS)
        self._word = 0
        self.hold = False  # _send() is deciding: the count IRQ holds off
        # A pulse the count IRQ fired, until flush() records it. These names are
        # ones the image already has: each new name is a qstr on the heap.
        self.fired = False
        self.t_us = time.ticks_us()  # when it was pushed
        self.pos_count = 0  # the count it fired at
        self.wait_us = 0  # its width and settle time, from the push
        self._pd_reset.value(0)

    def start(self, link):
        """Start the count IRQ; `link` is the board's, made after the laser."""
        self._link = link
        self._enc._sm.irq(self.track)  # soft: it reads the link (docstring)

    def off(self):
        self._en.value(0)  # first: one GPIO write
        self._arm.armed = False
        self._sm.exec(self._set_low)  # ends a pulse in flight

    def enable(self, on):
        # The interlock chain gates the driver in hardware anyway; this only
        # keeps the line honest when the core asks with an interlock open.
        if on and not self._may_enable():
            return
        self._en.value(1 if on else 0)
        # An interlock IRQ between the check above and the write would be
        # undone by the write: look again, and drop the line if one opened.
        if on and not self._may_enable():
            self.off()

    def configure(self, width_us, power_w):
        super().configure(width_us, power_w)  # checks LIMITS first
        self._word = pio.width_word(width_us)
        self._power.duty_u16(power_w * 65535 // _POWER_FULL_SCALE_W)

    def armed(self):
        """Armed, or fired by the count IRQ and not yet in the pulse log: the
        core arms the next pulse only once it has counted this one (SR-6)."""
        return self._arm.armed or self.fired

    def take_pulse(self, rec):
        if self.fired:
            self.flush()
        return self._log.take(rec)

    def stray_light(self):
        uj = self._pd_uj()  # first: a pulse the count IRQ pushes after this read is not in it
        if self.fired:
            return self._log.lost  # the integrator holds that pulse until flush() reads it
        return self._log.lost or uj > self._stray_uj

    def check(self, count):
        """wait()'s hook: record a pulse the count IRQ fired, or fire the armed
        pulse if it is due; True when a pulse was recorded."""
        if self.fired:
            self.flush()
            return True
        now = time.ticks_us()
        if not self._send(now, count):
            return False
        t = time.ticks_us()
        self._record(t, count, self.width_us + _PD_SETTLE_US)  # after the pulse has ended
        return True

    def track(self, sm):
        """The count IRQ (the quadrature SM's flag, soft: the port runs it at
        the core's next bytecode boundary): fire the armed pulse once its count
        is reached, as a pass of wait() would, but never while a byte waits on
        the link or the core has read one it may not have acted on yet (SR-2:
        wait() returns on a pending byte, the core reads it and acts on it
        first). The pulse is recorded later, by wait() or take_pulse(). No
        allocation."""
        arm = self._arm
        if not arm.armed or self.hold:
            return
        count = self._enc.count()
        if (count - arm.target) * arm.dir < 0:
            return  # not reached (due()'s count test): most calls end here, before due() and the poll
        now = time.ticks_us()
        if not arm.due(now, count):
            return
        link = self._link
        if link.seen or link.any():
            return  # SR-2: the core acts on every byte before a pulse (class Link)
        if self._send(now, count):
            self.t_us = time.ticks_us()
            self.pos_count = count
            self.wait_us = self.width_us + _PD_SETTLE_US
            self.fired = True

    def _send(self, now, count):
        """Push the armed pulse if it is due; True when pushed."""
        # Masked: an interlock IRQ between the enable check and the push would
        # not stop the push. The pulse SM's FIFO is empty (one pulse at a
        # time), so put() does not block with interrupts off. Masking holds
        # back the PIO interrupt, not a count IRQ callback it already
        # scheduled, which may run between two bytecodes here: hold keeps it
        # from pushing a second pulse.
        self.hold = True
        irq = machine.disable_irq()
        try:
            if not self._en.value() or not self._arm.due(now, count):
                return False
            self._arm.armed = False
            self._sm.put(self._word)
        finally:
            machine.enable_irq(irq)
            self.hold = False
        return True

    def flush(self):
        """Record the pulse the count IRQ fired, once its width and the
        integrator's settle time have passed since the push."""
        us = self.wait_us - time.ticks_diff(time.ticks_us(), self.t_us)
        self._record(self.t_us, self.pos_count, us if us > 0 else 0)
        self.fired = False


class Encoder:
    def __init__(self):
        a = Pin(pins.ENC_A, Pin.IN, Pin.PULL_UP)
        Pin(pins.ENC_B, Pin.IN, Pin.PULL_UP)
        sm = rp2.StateMachine(0, pio.quadrature, in_base=a)
        sm.put(pio.COUNT_ZERO)  # X = COUNT_ZERO before the program runs
        sm.exec("pull()")
        sm.exec("mov(x, osr)")
        # The program's first pass takes the previous A/B state from OSR:
        # make it the pins' state now, or a start with A or B high counts +-1.
        sm.exec("in_(pins, 2)")
        sm.exec("mov(osr, isr)")
        sm.active(1)
        self._sm = sm
        # drain[n] takes n stale words in one get(): count() runs every loop
        # and every pass of wait(), a call per word cost ~20 us each there
        self._drain = tuple(array("I", bytes(4 * n)) for n in range(_RX_FIFO_DEPTH + 1))

    def count(self):
        sm = self._sm
        n = sm.rx_fifo()
        if n:
            sm.get(self._drain[n])  # stale: pushed before the FIFO filled
        return sm.get() - pio.COUNT_ZERO  # the next push: a few us old (estimated)


class Inputs(mcu.Inputs):
    """Interlock and footswitch inputs; falling interlock edges trip the laser."""

    def __init__(self, board):
        super().__init__(board, pins.INPUTS)
        # Hard IRQs: _trip runs at once, with no allocation, integer work only (SR-3).
        for i in range(N_INTERLOCKS):
            self._pins[i].irq(self._tripper(i), Pin.IRQ_FALLING, hard=True)
        self._pins[N_INTERLOCKS].irq(self._wake, Pin.IRQ_FALLING | Pin.IRQ_RISING, hard=True)


class Board(Mem32NoteBoard):
    name = "rp2"
    limits = LIMITS
    settings = SETTINGS
    _note_addr = _WATCHDOG_SCRATCH0  # where reboot() keeps its cause (boardbase.Mem32NoteBoard)

    def __init__(self):
        machine.freq(pio.SYS_HZ)
        if not pio.divider(machine.freq(), pio.PULSE_HZ):
            raise RuntimeError("no integer PIO divider for the pulse clock")
        super().__init__(Encoder, Laser, Inputs, pins.INDICATOR, Link)
        self.laser.start(self.link)

    def wait(self, deadline_us):
        self.link.seen = False  # the core has acted on what it read in this step
        super().wait(deadline_us)

    def _port_cause(self):
        """A watchdog reset counts as a bite only with the SDK's marker (docstring above)."""
        cause = machine.reset_cause()
        if cause == machine.WDT_RESET:
            bite = machine.mem32[_WATCHDOG_REASON] & 3 and machine.mem32[_WATCHDOG_SCRATCH4] == _SDK_WDT_MAGIC
            machine.mem32[_WATCHDOG_SCRATCH4] = 0  # reported once: a later soft reset is no bite
            return hal.RESET_WATCHDOG if bite else hal.RESET_SOFT
        return mcu.cause_of(cause)


def make():
    return Board()
