# The boards' file store under power cuts, on FAT and littlefs images in RAM
# (SR-14): a cut at any block write of a slot write leaves the other slot whole.
import os
import sys

sys.path.append(__file__.rsplit("/", 1)[0] + "/../../boards/shared")

from filestore import FileStore
from mp_test_session import Prog, fire
from session import Session

_MOUNT = "/hilt-ramdisk"


class RamDisk:
    """A block device in RAM whose power goes after `budget` writes: that
    write lands half, every later one is lost."""

    def __init__(self, data=None, blocks=64, size=512):
        self.size = size
        self.data = bytearray(data if data is not None else blocks * size)
        self.budget = -1

    def _spend(self):
        if self.budget == 0:
            raise OSError(5)
        if self.budget > 0:
            self.budget -= 1
        return self.budget == 0

    def readblocks(self, n, buf, off=0):
        a = n * self.size + off
        for i in range(len(buf)):
            buf[i] = self.data[a + i]

    def writeblocks(self, n, buf, off=0):
        a = n * self.size + off
        last = self._spend()
        for i in range(len(buf) // 2 if last else len(buf)):
            self.data[a + i] = buf[i]
        if last:
            raise OSError(5)

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.size
        if op == 5:
            return self.size
        if op == 6:  # erase (littlefs)
            last = self._spend()
            a = arg * self.size
            for i in range(self.size // 2 if last else self.size):
                self.data[a + i] = 0xFF
            if last:
                raise OSError(5)
        return 0


def mounted(vfs_type, disk):
    vfs = vfs_type(disk)
    os.mount(vfs, _MOUNT)
    return Session(FileStore(_MOUNT + "/"))


def unmount():
    try:
        os.umount(_MOUNT)
    except OSError:
        pass


def cut_every_write(vfs_type):
    cuts = 0
    for budget in range(1, 400):
        disk = RamDisk()
        vfs_type.mkfs(disk)
        s = mounted(vfs_type, disk)
        assert s.load()
        s.begin(Prog(0xBEEF, 1000))
        fire(s, 40, 1000)
        before = s.reserved[0]
        disk.budget = budget
        try:
            fire(s, 8, 1000)  # the next reservation write
            done = True
        except OSError:
            done = False
        unmount()
        if done:
            assert cuts > 2
            return cuts
        cuts += 1
        t = mounted(vfs_type, RamDisk(disk.data))
        assert t.load(), "cut at block write %d: no slot whole" % budget
        assert t.done[0] >= before, "cut at block write %d: resumed %d < %d" % (budget, t.done[0], before)
        unmount()
    raise AssertionError("a slot write never completed")


def test_fat_keeps_a_whole_slot_through_a_cut_at_any_write():
    cut_every_write(os.VfsFat)


def test_littlefs_keeps_a_whole_slot_through_a_cut_at_any_write():
    cut_every_write(os.VfsLfs2)


def test_a_slot_file_that_cannot_be_read_is_unreadable_not_blank():
    disk = RamDisk()
    os.VfsLfs2.mkfs(disk)
    s = mounted(os.VfsLfs2, disk)
    try:
        for name in ("hilt-slot0.bin", "hilt-slot1.bin"):
            os.mkdir(_MOUNT + "/" + name)  # there, but open() fails (EISDIR)
        assert not s.load()
    finally:
        unmount()
