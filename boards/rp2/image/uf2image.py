"""The flashable image of a board on the rp2 port (the device, `rp2`, or the
bench rig, `rig_pico`): a MicroPython base UF2 plus a littlefs filesystem
holding the board's compiled modules, in one UF2 file.

    python boards/rp2/image/uf2image.py BUILD_DIR OUT_DIR
    python boards/rp2/image/uf2image.py --copy OUT_DIR DRIVE   (a Pico in BOOTSEL)
    python boards/rp2/image/uf2image.py --freeze-list          (writes base/frozen.txt)

The rig's base is stock MicroPython. The device's base has the rp2 modules
frozen in (base/frozen.txt names each source and its sha256): frozen
bytecode runs from flash, where .mpy files loaded from the filesystem take
about 40 KB of the RP2040's heap. A module whose source in the tree differs
from the one frozen goes into the filesystem as .mpy, which MicroPython
imports before the frozen one (sys.path: '' before '.frozen'), so an image
always runs the tree's code; a stale base costs heap, never correctness,
and the image build lists the modules it had to carry.

BUILD_DIR is `boards/build.py BOARD`'s output (the .mpy files, main.py,
version.txt); the UF2 is named from version.txt's board, firmware version
and `git describe`. Every file in it goes into the root of a littlefs2 image with
the geometry the rp2 port mounts on a Pico (last 1408 KB of the 2 MB flash),
so the board boots straight into main.py. The whole partition is written,
not only the blocks in use: a UF2 bootloader only rewrites the blocks a UF2
names, and stale metadata left from an earlier filesystem could otherwise
outrank the new superblock.
"""
import hashlib
import os
import shutil
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE_UF2 = HERE / "base" / "firmware-RPI_PICO-v1.28.0.uf2"
FROZEN_UF2 = HERE / "base" / "firmware-RPI_PICO-v1.28.0-rp2-frozen.uf2"
FROZEN_LIST = HERE / "base" / "frozen.txt"
FROZEN_BOARD = "rp2"  # the board whose modules the frozen base holds
ROOT = HERE.parent.parent.parent

UF2_MAGIC0 = 0x0A324655
UF2_MAGIC1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY = 0x00002000
RP2040_FAMILY = 0xE48BFF56
UF2_PAYLOAD = 256  # bytes per block, as the RP2040 boot ROM requires

FLASH_BASE = 0x10000000
FLASH_BYTES = 2 * 1024 * 1024
FS_BLOCK_BYTES = 4096
FS_BLOCK_COUNT = 352  # MICROPY_HW_FLASH_STORAGE_BYTES = 1408 KB on RPI_PICO
FS_BASE = FLASH_BASE + FLASH_BYTES - FS_BLOCK_BYTES * FS_BLOCK_COUNT  # 0x100A0000
FS_PROG_BYTES = 256  # _boot.py mounts VfsLfs2(bdev, progsize=256)
FS_READ_BYTES = 32
FS_LOOKAHEAD_BYTES = 32


class ImageError(Exception):
    pass


def read_uf2(data):
    """[(target address, payload bytes, family id)] of a UF2 file's blocks."""
    if len(data) % 512:
        raise ImageError("UF2 size %d is not a multiple of 512" % len(data))
    blocks = []
    for off in range(0, len(data), 512):
        m0, m1, flags, addr, size, num, total, family = struct.unpack_from("<8I", data, off)
        (end,) = struct.unpack_from("<I", data, off + 508)
        if (m0, m1, end) != (UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END):
            raise ImageError("UF2 block %d at byte %d has bad magic numbers" % (off // 512, off))
        if size > 476:
            raise ImageError("UF2 block %d claims a %d-byte payload" % (off // 512, size))
        if num != off // 512 or total != len(data) // 512:
            raise ImageError("UF2 block %d is numbered %d of %d" % (off // 512, num, total))
        blocks.append((addr, data[off + 32:off + 32 + size], family if flags & UF2_FLAG_FAMILY else None))
    return blocks


def write_uf2(blocks):
    """UF2 bytes for [(address, 256-byte payload)], numbered over the whole file."""
    out = bytearray()
    for i, (addr, payload) in enumerate(blocks):
        if len(payload) != UF2_PAYLOAD:
            raise ImageError("payload at 0x%08X is %d bytes, not %d" % (addr, len(payload), UF2_PAYLOAD))
        out += struct.pack("<8I", UF2_MAGIC0, UF2_MAGIC1, UF2_FLAG_FAMILY, addr, UF2_PAYLOAD,
                           i, len(blocks), RP2040_FAMILY)
        out += payload + bytes(476 - UF2_PAYLOAD) + struct.pack("<I", UF2_MAGIC_END)
    return bytes(out)


def littlefs_image(files):
    """The raw littlefs2 partition (FS_BLOCK_COUNT blocks) holding {name: bytes} at its root."""
    from littlefs import LittleFS

    fs = LittleFS(block_size=FS_BLOCK_BYTES, block_count=FS_BLOCK_COUNT, prog_size=FS_PROG_BYTES,
                  read_size=FS_READ_BYTES, lookahead_size=FS_LOOKAHEAD_BYTES)
    for name in sorted(files):
        with fs.open(name, "wb") as f:
            f.write(files[name])
    image = bytes(fs.context.buffer)
    if len(image) != FS_BLOCK_BYTES * FS_BLOCK_COUNT:
        raise ImageError("littlefs image is %d bytes, expected %d" % (len(image), FS_BLOCK_BYTES * FS_BLOCK_COUNT))
    return image


def read_littlefs(image):
    """{name: bytes} of the files at the root of a littlefs2 partition (no subdirectories expected)."""
    from littlefs import LittleFS, UserContext

    ctx = UserContext(len(image))
    ctx.buffer[:] = image
    fs = LittleFS(context=ctx, block_size=FS_BLOCK_BYTES, block_count=FS_BLOCK_COUNT, prog_size=FS_PROG_BYTES,
                  read_size=FS_READ_BYTES, lookahead_size=FS_LOOKAHEAD_BYTES, mount=True)
    out = {}
    for name in fs.listdir("/"):
        with fs.open(name, "rb") as f:
            out[name] = f.read()
    return out


def board_image(board, files):
    """(UF2, base path, files in its filesystem, modules left to the base) of
    `board` from its build's {name: bytes}: the board's base, checked against
    its recorded sha256, and the files it does not hold already."""
    base_uf2 = FROZEN_UF2 if board == FROZEN_BOARD else BASE_UF2
    base = base_uf2.read_bytes()
    if hashlib.sha256(base).hexdigest() != base_sha256(base_uf2):
        raise ImageError("%s does not match the sha256 in base/PROVENANCE.md" % base_uf2.name)
    files, same = carried_files(board, files)
    return project_image(base, files), base_uf2, files, same


def project_image(base_uf2, files):
    """One UF2: the base image's blocks, then the filesystem partition."""
    base = read_uf2(base_uf2)
    for addr, payload, family in base:
        if family != RP2040_FAMILY or len(payload) != UF2_PAYLOAD:
            raise ImageError("base image block at 0x%08X is not a 256-byte RP2040 block" % addr)
        if addr + UF2_PAYLOAD > FS_BASE:
            raise ImageError("base image reaches 0x%08X, into the filesystem at 0x%08X" % (addr, FS_BASE))
    fs = littlefs_image(files)
    blocks = [(addr, payload) for addr, payload, _ in base]
    blocks += [(FS_BASE + off, fs[off:off + UF2_PAYLOAD]) for off in range(0, len(fs), UF2_PAYLOAD)]
    return write_uf2(blocks)


def flash_contents(uf2):
    """{address: payload} of a UF2 as the boot ROM would write it."""
    return {addr: payload for addr, payload, _ in read_uf2(uf2)}


def filesystem_of(uf2):
    """The littlefs partition bytes a UF2 writes (erased 0xFF where it writes nothing)."""
    part = bytearray(b"\xff" * (FS_BLOCK_BYTES * FS_BLOCK_COUNT))
    for addr, payload in flash_contents(uf2).items():
        if FS_BASE <= addr < FS_BASE + len(part):
            part[addr - FS_BASE:addr - FS_BASE + len(payload)] = payload
    return bytes(part)


def base_sha256(base_uf2):
    """A base image's sha256 as recorded in base/PROVENANCE.md (`sha256 NAME: HEX`)."""
    key = "sha256 %s:" % base_uf2.name
    for line in (HERE / "base" / "PROVENANCE.md").read_text().splitlines():
        if line.startswith(key):
            return line[len(key):].strip().strip("`")
    raise ImageError("no '%s' line in base/PROVENANCE.md" % key)


def module_sources(board):
    """{module file in the image (NAME.mpy): sha256 of its source} for `board`."""
    sys.path.insert(0, str(ROOT / "boards"))
    try:
        from build import SOURCE_ONLY, sources
    finally:
        sys.path.pop(0)
    return {src.stem + ".mpy": (src, hashlib.sha256(src.read_bytes()).hexdigest())
            for src in sources(board) if src.name not in SOURCE_ONLY}


def freeze_list():
    """base/frozen.txt's text: every compiled module of the device image, with its source's sha256."""
    rows = sorted((str(src.relative_to(ROOT)), sha) for src, sha in module_sources(FROZEN_BOARD).values())
    return "# source sha256: the rp2 modules frozen in %s (manifest.py)\n%s" % (
        FROZEN_UF2.name, "".join("%s %s\n" % row for row in rows))


def frozen_modules():
    """{NAME.mpy: source sha256} of the modules the frozen base holds."""
    out = {}
    for line in FROZEN_LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, sha = line.split()
            out[Path(path).stem + ".mpy"] = sha
    return out


def carried_files(board, files):
    """The build's files the filesystem must carry over `board`'s base, and
    the compiled modules the base already holds, unchanged, so left out."""
    if board != FROZEN_BOARD:
        return files, []
    frozen = frozen_modules()
    tree = module_sources(board)
    same = sorted(n for n in files if n in tree and frozen.get(n) == tree[n][1])
    return {n: b for n, b in files.items() if n not in same}, same


def image_name(version_txt):
    """handpiece-<board>-<fw version>-<git describe>.uf2 from build.py's version.txt line."""
    fields = dict(f.split("=", 1) for f in version_txt.split() if "=" in f)
    if "board" not in fields or "fw" not in fields or "git" not in fields:
        raise ImageError("version.txt lacks board=, fw= or git=: %r" % version_txt.strip())
    return "handpiece-%s-%s-%s.uf2" % (fields["board"], fields["fw"], fields["git"])


def copy_to_drive(out_dir, drive):
    """Copy the one UF2 in out_dir onto a mounted RPI-RP2 boot drive."""
    drive = Path(drive)
    if not (drive / "INFO_UF2.TXT").is_file():
        raise ImageError("%s is not a mounted RPI-RP2 drive (no INFO_UF2.TXT): hold BOOTSEL while "
                         "plugging the Pico in, then give its mount point" % drive)
    images = sorted(Path(out_dir).glob("*.uf2"))
    if len(images) != 1:
        raise ImageError("expected one UF2 in %s, found %d: run `make image BOARD=...`" % (out_dir, len(images)))
    shutil.copyfile(images[0], drive / images[0].name)
    os.sync()  # the Pico reboots into the new image once the last block is written
    return images[0]


def main(argv):
    if len(argv) == 4 and argv[1] == "--copy":
        try:
            image = copy_to_drive(argv[2], argv[3])
        except ImageError as e:
            print("uf2image: %s" % e, file=sys.stderr)
            return 2
        print("copied %s to %s" % (image.name, argv[3]))
        return 0
    if argv[1:] == ["--freeze-list"]:
        FROZEN_LIST.write_text(freeze_list())
        print("wrote %s: now rebuild the frozen base (base/rebuild.sh --frozen)" % FROZEN_LIST)
        return 0
    if len(argv) != 3:
        print("usage: uf2image.py BUILD_DIR OUT_DIR | --copy OUT_DIR DRIVE | --freeze-list", file=sys.stderr)
        return 2
    build_dir, out_dir = Path(argv[1]), Path(argv[2])
    if not (build_dir / "main.py").is_file() or not (build_dir / "version.txt").is_file():
        print("uf2image: no main.py or version.txt in %s: run `boards/build.py BOARD` first" % build_dir,
              file=sys.stderr)
        return 2
    version = (build_dir / "version.txt").read_text()
    try:
        board = dict(f.split("=", 1) for f in version.split() if "=" in f).get("board")
        files = {p.name: p.read_bytes() for p in sorted(build_dir.iterdir()) if p.is_file()}
        out = out_dir / image_name(version)
        uf2, base_uf2, files, same = board_image(board, files)
    except ImageError as e:
        print("uf2image: %s" % e, file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.uf2"):
        old.unlink()  # one image in the folder: the one `make flash DRIVE=...` copies
    out.write_bytes(uf2)
    print("%s  %s" % (hashlib.sha256(uf2).hexdigest(), out))
    print("%d bytes, %d files in the filesystem at 0x%08X, on %s" % (len(uf2), len(files), FS_BASE, base_uf2.name))
    if board == FROZEN_BOARD:
        carried = sorted(n for n in files if n.endswith(".mpy"))
        print("%d modules frozen in the base; %d changed since, carried as .mpy%s" % (
            len(same), len(carried), (": " + " ".join(carried)) if carried else ""))
    return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
