"""Boot the firmware on the simulated board; a modelled reset boots it again."""
import gc
import sys

sys.path.append(sys.path[0] + "/../../firmware")
sys.path.append(sys.path[0] + "/../shared")

import board

b = board.make()
gc.collect()
b.heap_base = gc.mem_alloc()  # the simulator's own share, reported apart by the rig

import app  # noqa: E402

while True:
    try:
        app.main(b)
    except board.Reset as r:
        b.restart(r.cause)
