"""Non-volatile store on the board's flash filesystem: one file per slot.

The HAL asks for two blocks of hal.STORE_BLOCK bytes whose writes never touch
each other. Each slot is its own file, written to a temporary file and then
renamed over the slot's file. On littlefs (rp2, esp32, and a pyboard
formatted with littlefs) the rename is atomic: a power cut leaves the old or
the new block, never a mix. On FAT (the pyboard's factory filesystem) the
rename unlinks first, so a cut can lose that one slot; the other slot's file is
never opened for writing, which is what the two-slot session store relies on.

Writes block for a flash program/erase (milliseconds): the core only writes
with no pulse armed (firmware/controller.py), never from an interrupt.
"""
import os

import hal

_NAMES = ("hilt-slot0.bin", "hilt-slot1.bin")
_TMP = "hilt-slot.tmp"


class FileStore:
    def __init__(self, folder=""):
        self._paths = tuple(folder + n for n in _NAMES)
        self._tmp = folder + _TMP

    def read(self, slot):
        try:
            with open(self._paths[slot], "rb") as f:
                block = f.read(hal.STORE_BLOCK + 1)
        except OSError:
            return None  # never written: the session store treats it as empty
        return block if len(block) == hal.STORE_BLOCK else None

    def write(self, slot, data):
        if len(data) > hal.STORE_BLOCK:
            raise ValueError("store block > %d bytes" % hal.STORE_BLOCK)
        block = bytes(data) + b"\xff" * (hal.STORE_BLOCK - len(data))
        with open(self._tmp, "wb") as f:
            f.write(block)
        os.rename(self._tmp, self._paths[slot])
