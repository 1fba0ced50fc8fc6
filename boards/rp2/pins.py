"""Raspberry Pi Pico (RP2040) pin map: GPIO numbers. Wiring: docs/boards.md.

Outputs that can make light (LASER_EN, LASER_FIRE) have 10 kOhm pull-downs on
the carrier board: the RP2040 leaves its pins as inputs in reset and while the
bootloader runs, so only the resistors hold them low then (SR-1).
"""
from micropython import const

from interlocks import N_INTERLOCKS, NAMES

ENC_A = const(2)  # quadrature A: PIO0 in_base; B must be the next GPIO
ENC_B = const(3)
KEY = const(6)  # interlock inputs: high = closed/healthy, pulled down
DOOR = const(7)
ESTOP = const(8)
HANDPIECE = const(9)
TEMP = const(10)
FLOW = const(11)
FOOT = const(12)  # footswitch: high = pressed
LASER_EN = const(14)  # laser-enable, gates the driver with the interlock chain
LASER_FIRE = const(15)  # fire pulse, PIO1 set pin
INDICATOR = const(16)  # emission indicator lamp driver
PD_RESET = const(17)  # high discharges the photodiode integrator
POWER_SET = const(18)  # PWM -> RC filter -> driver's analog power setpoint
SAFE_MODE = const(22)  # jumper to GND at power-up: main.py stays in the REPL
PD_ADC = const(26)  # ADC0: photodiode integrator output

# Pin i is input bit i: each pin is named as its row of firmware/interlocks.py.
INPUTS = tuple(globals()[name.upper()] for name in NAMES)
INTERLOCKS = INPUTS[:N_INTERLOCKS]
ALL = (ENC_A, ENC_B) + INPUTS + (LASER_EN, LASER_FIRE, INDICATOR, PD_RESET, POWER_SET, SAFE_MODE, PD_ADC)
