"""Pyboard v1.1 (STM32F405) pin map: board pin names. Wiring: docs/boards.md.

The timer pins are fixed by the STM32F405 alternate-function table
(datasheet DS8626, table 9): TIM8_CH1 on PC6 (Y1), TIM8_BKIN on PA6 (X7),
TIM4_CH1/CH2 on PB6/PB7 (X9/X10), TIM2_CH1 on PA0 (X1). LASER_FIRE and
LASER_EN have 10 kOhm pull-downs: in reset the STM32 pins float.
"""
from micropython import const

from interlocks import N_INTERLOCKS, NAMES

AF1_TIM2 = const(1)  # alternate-function numbers (DS8626 table 9)
AF2_TIM4 = const(2)
AF3_TIM8 = const(3)

LASER_FIRE = "Y1"  # PC6, TIM8_CH1 (AF3): one-pulse output
LASER_BRK = "X7"  # PA6, TIM8_BKIN (AF3): the interlock chain, low = break
LASER_EN = "Y3"  # PB8: laser-enable line
ENC_A = "X9"  # PB6, TIM4_CH1 (AF2)
ENC_B = "X10"  # PB7, TIM4_CH2 (AF2)
POWER_SET = "X1"  # PA0, TIM2_CH1 (AF1): PWM -> RC filter -> power setpoint
KEY = "Y4"  # PB9; interlocks high = closed/healthy, pulled down
DOOR = "Y5"  # PB12
ESTOP = "Y6"  # PB13
HANDPIECE = "Y7"  # PB14
TEMP = "Y8"  # PB15
FLOW = "Y9"  # PB10
FOOT = "Y10"  # PB11: footswitch, high = pressed
INDICATOR = "Y11"  # PB0: emission indicator lamp driver
PD_ADC = "X19"  # PC0, ADC123_IN10: photodiode integrator
PD_RESET = "X20"  # PC1: high discharges the integrator
SAFE_MODE = "X17"  # PB3, the USR switch: held at boot, main.py stays in the REPL

# Pin i is input bit i: each pin is named as its row of firmware/interlocks.py.
INPUTS = tuple(globals()[name.upper()] for name in NAMES)
INTERLOCKS = INPUTS[:N_INTERLOCKS]
ALL = (LASER_FIRE, LASER_BRK, LASER_EN, ENC_A, ENC_B, POWER_SET) + INPUTS + (INDICATOR, PD_ADC, PD_RESET, SAFE_MODE)
