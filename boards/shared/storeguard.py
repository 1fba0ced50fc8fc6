"""The board's store behind a guard: LASER_EN is low during every write.

A flash write masks every interrupt on rp2 and esp32 (RP2040: 45 ms typical,
400 ms at most per 4 KB erase) and stalls the CPU on stm32: the interlock
IRQ cannot run then, so no emission may be possible (docs/requirements.md, performance budgets).
write() therefore drops the laser (laser.off(): enable low, armed pulse
cancelled) before it hands the block to the store, and raises the enable
again afterwards only if it was high before; enable(True) refuses if an
interlock opened or tripped meanwhile (the IRQ held back by the masked write
runs as soon as interrupts come back, and its trip stays latched). The core
only writes with no pulse armed (firmware/emission.py), so nothing is
lost. The watchdog must outlast the worst-case write: each board's
SETTINGS["wdt_timeout_ms"] says by how much (docs/boards.md).
"""


class StoreGuard:
    def __init__(self, store, laser):
        self._store = store
        self._laser = laser

    def read(self, slot):
        return self._store.read(slot)

    def write(self, slot, data):
        laser = self._laser
        was_on = laser.is_enabled()
        laser.off()
        self._store.write(slot, data)
        if was_on:
            laser.enable(True)
