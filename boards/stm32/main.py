"""Boot the firmware on the pyboard. Laser outputs low first (SR-1); the USR
switch held during boot leaves the REPL free (docs/boards.md)."""
from machine import Pin

import pins

Pin(pins.LASER_EN, Pin.OUT, value=0)
Pin(pins.LASER_FIRE, Pin.OUT, value=0)

if Pin(pins.SAFE_MODE, Pin.IN, Pin.PULL_UP).value():  # USR switch pulls to GND when held
    import app
    import board

    app.main(board.make())
else:
    print("hilt: safe mode (USR held): firmware not started")
