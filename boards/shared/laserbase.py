"""The parts of an MCU board's `laser` (firmware/hal.py) that every board does alike.

LaserBase: the fired-pulse log (shared/pulselog.py) behind take_pulse(), the
configure() prologue (check against the board's LIMITS, keep width_us) and
the photodiode integrator's read-and-discharge after a pulse. SoftArmLaser
adds the software arm of the boards without a hardware count compare (rp2,
esp32: shared/softarm.py) and their integrator read on machine.ADC.

Each board's Laser subclasses one of them and keeps what differs: its pulse
mechanism, off()/enable(), check(), the docstring saying what its timing
guarantees and how it knows, and its calibration constants, which it hands
over as the class attributes declared below. disarm() and armed() are
integer work only, no allocation, as off() in the interlock IRQ needs.
"""
import time
from machine import ADC, Pin

import mcu
import softarm
from pulselog import PulseLog


class LaserBase:
    # Set by each board's Laser (its own constants, docs/boards.md bring-up).
    _limits: dict  # the board's LIMITS, checked by configure()
    _pd_reset_us: int  # discharge time of the integrator
    _pd_reset: Pin  # high discharges the integrator
    _interlocks: tuple  # the interlock input pins
    _en: Pin  # LASER_EN

    def __init__(self):
        self._log = PulseLog()
        self.width_us = 0
        self._inputs: "mcu.Inputs | None" = None

    def watch(self, inputs):
        """Make enable(True) refuse while `inputs` (mcu.Inputs) holds a trip
        the core has not read yet (set by BoardBase once the inputs exist)."""
        self._inputs = inputs

    def _may_enable(self):
        """Every interlock reads closed and no latched trip waits for the
        core: an opening shorter than a control step must not let the
        enable line come back before the core has seen it (SR-4)."""
        inputs = self._inputs
        return mcu.closed(self._interlocks) and not (inputs is not None and inputs.tripped())

    def is_enabled(self):
        """The laser-enable line is high."""
        return bool(self._en.value())

    def configure(self, width_us, power_w):
        """Check against the board's limits and keep the width; the board's
        override then sets its pulse timer and power output."""
        mcu.check_pulse(self._limits, width_us, power_w)
        self.width_us = width_us

    def take_pulse(self, rec):
        return self._log.take(rec)

    def _pd_uj(self):
        """The integrator reading in uJ (the board's ADC and calibration)."""
        raise NotImplementedError

    def _record(self, t, count, wait_us):
        """After a pulse: wait wait_us for it to end and the integrator to
        settle, read it, discharge it and log the pulse."""
        time.sleep_us(wait_us)
        uj = self._pd_uj()
        self._pd_reset.value(1)
        time.sleep_us(self._pd_reset_us)
        self._pd_reset.value(0)
        self._log.push(t, count, uj)


class SoftArmLaser(LaserBase):
    """The arm held in software (shared/softarm.py), tested by the board's check()."""
    _pd_uj_per_lsb: int  # photodiode integrator: uJ per 12-bit ADC step
    _stray_uj: int  # integrator reading that counts as light
    _adc: ADC  # the photodiode integrator

    def __init__(self):
        super().__init__()
        self._arm = softarm.SoftArm()

    def arm(self, not_before_us, target, direction):
        self._arm.arm(not_before_us, target, direction)

    def disarm(self):
        self._arm.armed = False

    def armed(self):
        return self._arm.armed

    def stray_light(self):
        return self._log.lost or self._pd_uj() > self._stray_uj

    @property
    def pd_step_uj(self):
        return self._pd_uj_per_lsb

    def _pd_uj(self):
        return (self._adc.read_u16() >> 4) * self._pd_uj_per_lsb
