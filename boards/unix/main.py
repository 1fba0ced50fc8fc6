"""Boot the firmware on the simulated board; a modelled reset boots it again."""
import sys

sys.path.append(sys.path[0] + "/../../firmware")

import app  # noqa: E402
import board  # noqa: E402

b = board.make()
while True:
    try:
        app.main(b)
    except board.Reset as r:
        b.restart(r.cause)
