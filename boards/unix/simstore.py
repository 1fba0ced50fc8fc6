"""The simulated store: the real boards' file store, its writes cut on request."""
import os

import hal
from filestore import FileStore


class Store(FileStore):
    """The real boards' store (shared/filestore.py), its rename done the way
    FAT does it (remove, then rename): the worst case of the real boards.

    `cut` stops the next write at a step: `data` (half the block is in the
    temporary file) or `swap` (the slot's file removed, the temporary file not
    yet renamed), then does `power` (a power loss), `soft` (a soft reset),
    `error` (the write raises OSError, as a failing flash does), `kill` (the
    firmware process is killed, SIGKILL) or `stall` (the write blocks for
    `stall_us` of board time, watchdog running, then goes on)."""

    ACTIONS = ("power", "soft", "error", "kill", "stall")

    def __init__(self, board, folder):
        super().__init__(folder)
        self._b = board
        self.cut = None  # (step, action, stall_us) for the next write
        self._cut = None  # the cut of the write under way

    def write(self, slot, data):
        self._cut, self.cut = self.cut, None
        super().write(slot, data)

    def _put(self, path, block):
        if self._cut and self._cut[0] == "data":
            with open(path, "wb") as f:
                f.write(block[: len(block) // 2])
            self._act()
        super()._put(path, block)

    def _replace(self, tmp, path):
        try:
            os.remove(path)
        except OSError:
            pass  # the slot's first write
        if self._cut and self._cut[0] == "swap":
            self._act()
        os.rename(tmp, path)

    def _act(self):
        step, action, stall_us = self._cut
        self._cut = None
        b = self._b
        b.notify("r %d cut %s %s" % (b.t, step, action))
        if action == "stall":
            b.block(stall_us)  # the loop is stuck in the write; the watchdog is not
        elif action == "kill":
            os.system("kill -9 $PPID")  # this process, from the shell it started
        elif action == "error":
            raise OSError(5)  # EIO: the firmware restarts after the exception
        elif action == "soft":
            b.reset_now(hal.RESET_SOFT, "soft")
        else:
            b.laser.off()
            b.reset_now(hal.RESET_POWER, "power torn-write")

