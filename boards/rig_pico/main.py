"""Boot the bench rig. A jumper from SAFE_MODE to GND at power-up leaves the
REPL free (docs/boards.md)."""
from machine import Pin

import pins

if Pin(pins.SAFE_MODE, Pin.IN, Pin.PULL_UP).value():
    import board

    board.make().run()
else:
    print("rig: safe mode (SAFE_MODE jumper to GND): rig not started")
