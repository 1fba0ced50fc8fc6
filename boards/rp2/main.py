"""Boot the firmware on the Pico. Laser outputs low first (SR-1); a jumper
from SAFE_MODE to GND at power-up leaves the REPL free (docs/boards.md)."""
from machine import Pin

import pins

Pin(pins.LASER_EN, Pin.OUT, value=0)
Pin(pins.LASER_FIRE, Pin.OUT, value=0)

if Pin(pins.SAFE_MODE, Pin.IN, Pin.PULL_UP).value():
    import board  # first: its tables' names are then shared by the firmware's modules (heap, reference.py)
    import app

    app.main(board.make())
else:
    print("hilt: safe mode (SAFE_MODE jumper to GND): firmware not started")
