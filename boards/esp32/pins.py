"""ESP32-S3 (DevKitC-1 N8R8) pin map: GPIO numbers. Wiring: docs/boards.md.

Avoided: strapping pins (0, 3, 45, 46), USB (19, 20), flash and octal PSRAM
(26-37). The photodiode is on ADC1 (ADC2 is unusable with Wi-Fi on). LASER_EN
and LASER_FIRE have 10 kOhm pull-downs: the pins float in reset and boot.
"""
from micropython import const

from interlocks import N_INTERLOCKS, NAMES

PD_ADC = const(1)  # ADC1_CH0: photodiode integrator
PD_RESET = const(2)  # high discharges the integrator
LASER_EN = const(4)
LASER_FIRE = const(5)  # RMT channel 0 output
ENC_A = const(6)  # PCNT unit 0 (machine.Encoder)
ENC_B = const(7)
KEY = const(8)  # interlocks high = closed/healthy, pulled down
DOOR = const(9)
ESTOP = const(10)
HANDPIECE = const(11)
TEMP = const(12)
FLOW = const(13)
FOOT = const(14)  # footswitch: high = pressed
INDICATOR = const(15)
POWER_SET = const(16)  # PWM -> RC filter -> driver's analog power setpoint
SAFE_MODE = const(18)  # jumper to GND at power-up: main.py stays in the REPL

# Pin i is input bit i: each pin is named as its row of firmware/interlocks.py.
INPUTS = tuple(globals()[name.upper()] for name in NAMES)
INTERLOCKS = INPUTS[:N_INTERLOCKS]
ALL = (PD_ADC, PD_RESET, LASER_EN, LASER_FIRE, ENC_A, ENC_B) + INPUTS + (INDICATOR, POWER_SET, SAFE_MODE)
