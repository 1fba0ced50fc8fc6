"""Non-volatile store on the board's flash filesystem: one file per slot.

The HAL asks for two blocks of hal.STORE_BLOCK bytes whose writes never touch
each other, and for read() to tell a slot never written (None) from one that
is there but cannot be read (short or empty bytes: the session store takes it
as corrupt, F09 if no slot is whole, never as blank).

Each slot is its own file, written whole to the slot's own temporary file and
then renamed over the slot's file; the other slot's files are never opened for
writing. On littlefs (rp2, esp32) the rename is atomic: a power cut leaves the
old or the new block. On FAT (the pyboard's factory filesystem) MicroPython's
rename removes the old file first: a cut between the two leaves no slot file
but a whole temporary file, which read() then returns. So a cut at any point
leaves the slot being written old, new or torn, and the other slot whole.

Writes block for a flash program/erase (milliseconds): the core only writes
with no pulse armed (firmware/emission.py), never from an interrupt.
"""
import errno
import os

import hal


class FileStore:
    def __init__(self, folder=""):
        self._paths = (folder + "hilt-slot0.bin", folder + "hilt-slot1.bin")
        self._tmps = (folder + "hilt-slot0.tmp", folder + "hilt-slot1.tmp")

    def read(self, slot):
        for path in (self._paths[slot], self._tmps[slot]):
            try:
                with open(path, "rb") as f:
                    return f.read(hal.STORE_BLOCK + 1)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    return b""  # there, but unreadable: corrupt, not blank
        return None  # never written

    def write(self, slot, data):
        if len(data) > hal.STORE_BLOCK:
            raise ValueError("store block > %d bytes" % hal.STORE_BLOCK)
        block = bytes(data) + b"\xff" * (hal.STORE_BLOCK - len(data))
        tmp = self._tmps[slot]
        self._put(tmp, block)
        self._replace(tmp, self._paths[slot])

    def _put(self, path, block):
        with open(path, "wb") as f:
            f.write(block)

    def _replace(self, tmp, path):
        os.rename(tmp, path)
