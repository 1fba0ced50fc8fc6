# The boards' file store under power cuts, on FAT and littlefs images in RAM
# (SR-14): a cut at any block write of a slot write leaves the other slot whole.
import os
import sys

sys.path.append(__file__.rsplit("/", 1)[0] + "/../../boards/shared")

from filestore import FOLDER, FileStore
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


def mounted(vfs_type, disk, boards=False):
    """The session on a store in the root, or (`boards`) as the boards keep
    it: in FOLDER, an older firmware's root slots read until replaced."""
    vfs = vfs_type(disk)
    os.mount(vfs, _MOUNT)
    root = _MOUNT + "/"
    return Session(FileStore(root + FOLDER, legacy=root) if boards else FileStore(root))


def unmount():
    try:
        os.umount(_MOUNT)
    except OSError:
        pass


def cut_every_write(vfs_type, boards=False):
    cuts = 0
    for budget in range(1, 400):
        disk = RamDisk()
        vfs_type.mkfs(disk)
        s = mounted(vfs_type, disk, boards)
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
        t = mounted(vfs_type, RamDisk(disk.data), boards)
        assert t.load(), "cut at block write %d: no slot whole" % budget
        assert t.done[0] >= before, "cut at block write %d: resumed %d < %d" % (budget, t.done[0], before)
        unmount()
    raise AssertionError("a slot write never completed")


def test_fat_keeps_a_whole_slot_through_a_cut_at_any_write():
    cut_every_write(os.VfsFat)


def test_littlefs_keeps_a_whole_slot_through_a_cut_at_any_write():
    cut_every_write(os.VfsLfs2)


def test_the_boards_folder_keeps_a_whole_slot_through_a_cut_at_any_write():
    cut_every_write(os.VfsFat, boards=True)
    cut_every_write(os.VfsLfs2, boards=True)


def test_the_first_write_makes_the_folder_and_a_new_store_is_blank():
    disk = RamDisk()
    os.VfsLfs2.mkfs(disk)
    s = mounted(os.VfsLfs2, disk, boards=True)
    try:
        assert s.load() and s.closed  # blank: no folder, no slot anywhere
        s.begin(Prog(0xBEEF, 1000))
        assert sorted(os.listdir(_MOUNT + "/" + FOLDER)) == ["hilt-slot1.bin"]
        assert "hilt-slot1.bin" not in os.listdir(_MOUNT)
    finally:
        unmount()


def test_an_open_session_in_the_root_survives_the_move_to_the_folder():
    """An older firmware kept the slots in the root: the session it left open
    resumes, and once both slots are written in the folder the root's are
    no longer read."""
    disk = RamDisk()
    os.VfsLfs2.mkfs(disk)
    old = mounted(os.VfsLfs2, disk)  # the older firmware's layout
    try:
        assert old.load() and old.begin(Prog(0xBEEF, 1000))
        fire(old, 40, 1000)
        before = old.reserved[0]
    finally:
        unmount()
    s = mounted(os.VfsLfs2, RamDisk(disk.data), boards=True)
    try:
        assert s.load() and not s.closed and s.program_crc == 0xBEEF and s.done[0] == before
        fire(s, 20, 1000)  # two reservation writes: both slots now in the folder
        after = s.reserved[0]
        for name in ("hilt-slot0.bin", "hilt-slot1.bin"):
            with open(_MOUNT + "/" + name, "wb") as f:
                f.write(b"garbage")
        t = Session(FileStore(_MOUNT + "/" + FOLDER, legacy=_MOUNT + "/"))
        assert t.load() and t.done[0] == after > before
    finally:
        unmount()


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
