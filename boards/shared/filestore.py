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

The boards keep the slots in a folder of their own (FOLDER),
made by the first write: a write then commits to that folder's small
littlefs metadata, not to the root's, which lists every firmware module and
is re-read at every commit (on the emulated rp2 a root write took 33-49 ms and
every third or fourth, which compacts the root, 297 ms of CPU time, flash
erase not counted; in the folder 9-15 ms and 30 ms). `legacy` is where an
older firmware kept them (the root): a slot not yet written in the folder is
read from there, so an open session survives the update (SR-14).
"""
import errno
import os

import hal

FOLDER = "hilt-store/"  # the boards' store folder, in the filesystem's root

class FileStore:
    def __init__(self, folder="", legacy=None):
        self._dir = folder.rstrip("/")
        self._paths = (_names(folder, 0)[0], _names(folder, 1)[0])
        self._tmps = (_names(folder, 0)[1], _names(folder, 1)[1])
        # where read() looks, in order: the slot's file, its temporary file, then the legacy pair
        self._reads = tuple(_names(folder, s) + (_names(legacy, s) if legacy is not None else ()) for s in (0, 1))

    def read(self, slot):
        for path in self._reads[slot]:
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
        try:
            self._put(tmp, block)
        except OSError as e:
            if e.errno != errno.ENOENT or not self._dir:
                raise
            os.mkdir(self._dir)  # the store's first write makes its folder
            self._put(tmp, block)
        self._replace(tmp, self._paths[slot])

    def _put(self, path, block):
        with open(path, "wb") as f:
            f.write(block)

    def _replace(self, tmp, path):
        os.rename(tmp, path)


def _names(folder, slot):
    """The slot's file and its temporary file in `folder` (a prefix ending in /, or "")."""
    return (folder + "hilt-slot%d.bin" % slot, folder + "hilt-slot%d.tmp" % slot)
