"""Bench rig Pico pin map: GPIO numbers. Wiring: docs/boards.md ("Bench rig").

Device-side numbers match the rp2 board so the rig plugs pin for pin into a
device Pico; for the other boards docs/boards.md lists the crossings.
"""
from micropython import const

QUAD_A = const(2)  # -> device ENC_A (PIO0 out pins; B must be A+1)
QUAD_B = const(3)  # -> device ENC_B
KEY = const(6)  # -> device interlock inputs: driven high = closed
DOOR = const(7)
ESTOP = const(8)
HANDPIECE = const(9)
TEMP = const(10)
FLOW = const(11)
FOOT = const(12)  # -> device footswitch input: high = pressed
EN_IN = const(14)  # <- device LASER_EN
FIRE_IN = const(15)  # <- device LASER_FIRE (PIO1 width meter and a hard IRQ)
IND_IN = const(16)  # <- device INDICATOR
POWER_RELAY = const(20)  # high = device powered (MOSFET/relay on its supply)
SAFE_MODE = const(22)  # jumper to GND at power-up: main.py stays in the REPL

OUTPUTS = (KEY, DOOR, ESTOP, HANDPIECE, TEMP, FLOW, FOOT)  # the rig's `in` names, in order
ALL = (QUAD_A, QUAD_B) + OUTPUTS + (EN_IN, FIRE_IN, IND_IN, POWER_RELAY, SAFE_MODE)
