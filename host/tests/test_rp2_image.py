"""The flashable rp2 UF2 (`make image BOARD=rp2`): block structure, where each
part lands in flash, and that its filesystem holds exactly the built modules."""
import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = _load("build", ROOT / "boards" / "build.py")
uf2image = _load("uf2image", ROOT / "boards" / "rp2" / "image" / "uf2image.py")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(build dir, {name: bytes} of its files, the project UF2 bytes)."""
    out = build.build("rp2", tmp_path_factory.mktemp("img") / "rp2")
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    return out, files, uf2image.project_image(uf2image.BASE_UF2.read_bytes(), files)


def test_base_image_matches_its_provenance():
    base = uf2image.BASE_UF2.read_bytes()
    assert hashlib.sha256(base).hexdigest() == uf2image.base_sha256(uf2image.BASE_UF2)
    blocks = uf2image.read_uf2(base)
    assert blocks[0][0] == 0x10000000, "the second-stage boot loader comes first"


def test_every_block_is_a_numbered_rp2040_block(built):
    uf2 = built[2]
    n = len(uf2) // 512
    addrs = []
    for i in range(n):
        m0, m1, flags, addr, size, num, total, family = (
            int.from_bytes(uf2[i * 512 + 4 * k:i * 512 + 4 * k + 4], "little") for k in range(8))
        assert (m0, m1) == (0x0A324655, 0x9E5D5157)
        assert uf2[i * 512 + 508:i * 512 + 512] == (0x0AB16F30).to_bytes(4, "little")
        assert flags == 0x2000 and family == 0xE48BFF56, "family id present and RP2040"
        assert (num, total, size) == (i, n, 256)
        assert addr % 256 == 0
        addrs.append(addr)
    assert len(set(addrs)) == n, "no flash page written twice"
    assert all(0x10000000 <= a < 0x10200000 for a in addrs), "inside the Pico's 2 MB flash"


def test_base_then_the_whole_filesystem_partition(built):
    uf2 = built[2]
    base = uf2image.read_uf2(uf2image.BASE_UF2.read_bytes())
    blocks = uf2image.read_uf2(uf2)
    assert [(a, p) for a, p, _ in blocks[:len(base)]] == [(a, p) for a, p, _ in base], "base image unchanged"
    fs_addrs = [a for a, _, _ in blocks[len(base):]]
    assert uf2image.FS_BASE == 0x100A0000
    assert fs_addrs == list(range(0x100A0000, 0x10200000, 256)), "every page of the 1408 KB partition"
    assert max(a for a, _, _ in base) < 0x100A0000


def test_filesystem_holds_exactly_the_built_modules(built):
    build_dir, files, uf2 = built
    on_flash = uf2image.read_littlefs(uf2image.filesystem_of(uf2))
    assert on_flash == files
    assert "main.py" in on_flash and "app.mpy" in on_flash and "board.mpy" in on_flash
    assert sorted(on_flash) == sorted(p.name for p in build_dir.iterdir())


def test_make_image_names_the_uf2_and_prints_its_sha256(built, tmp_path):
    build_dir = built[0]
    out_dir = tmp_path / "image"
    (out_dir).mkdir()
    (out_dir / "stale.uf2").write_bytes(b"old")
    r = subprocess.run([sys.executable, str(ROOT / "boards" / "rp2" / "image" / "uf2image.py"),
                        str(build_dir), str(out_dir)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    images = sorted(out_dir.glob("*.uf2"))
    version = dict(f.split("=", 1) for f in (build_dir / "version.txt").read_text().split())
    assert [p.name for p in images] == ["handpiece-rp2-%s-%s.uf2" % (version["fw"], version["git"])]
    digest = re.match(r"([0-9a-f]{64})  ", r.stdout).group(1)
    assert digest == hashlib.sha256(images[0].read_bytes()).hexdigest()


def test_rig_image_holds_the_rig_firmware_and_is_named_for_it(tmp_path):
    """`make image BOARD=rig_pico`: the same base, the rig's own modules, no firmware core."""
    build_dir = build.build("rig_pico", tmp_path / "rig_pico")
    r = subprocess.run([sys.executable, str(ROOT / "boards" / "rp2" / "image" / "uf2image.py"),
                        str(build_dir), str(tmp_path / "image")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    images = sorted((tmp_path / "image").glob("*.uf2"))
    assert len(images) == 1 and images[0].name.startswith("handpiece-rig_pico-")
    on_flash = uf2image.read_littlefs(uf2image.filesystem_of(images[0].read_bytes()))
    assert on_flash == {p.name: p.read_bytes() for p in build_dir.iterdir()}
    assert on_flash["main.py"] == (ROOT / "boards" / "rig_pico" / "main.py").read_bytes()
    assert {"board.mpy", "rigpio.mpy", "keyframes.mpy", "stdiolink.mpy"} <= set(on_flash)
    assert "app.mpy" not in on_flash, "the rig runs no firmware core"


def test_copy_needs_a_boot_drive(built, tmp_path):
    img = tmp_path / "image"
    img.mkdir()
    (img / "handpiece-rp2-x.uf2").write_bytes(built[2])
    drive = tmp_path / "drive"
    drive.mkdir()
    with pytest.raises(uf2image.ImageError, match="not a mounted RPI-RP2 drive"):
        uf2image.copy_to_drive(img, drive)
    (drive / "INFO_UF2.TXT").write_text("Board-ID: RPI-RP2\n")
    uf2image.copy_to_drive(img, drive)
    assert (drive / "handpiece-rp2-x.uf2").read_bytes() == built[2]


def test_bad_uf2_is_refused_with_a_reason():
    base = bytearray(uf2image.BASE_UF2.read_bytes())
    base[512:516] = b"\0\0\0\0"
    with pytest.raises(uf2image.ImageError, match="block 1 .* bad magic"):
        uf2image.read_uf2(bytes(base))


def test_frozen_base_matches_its_provenance_and_holds_its_modules():
    base = uf2image.FROZEN_UF2.read_bytes()
    assert hashlib.sha256(base).hexdigest() == uf2image.base_sha256(uf2image.FROZEN_UF2)
    flash = b"".join(p for _, p in sorted(uf2image.flash_contents(base).items()))
    for name in uf2image.frozen_modules():
        assert name[:-len(".mpy")].encode() + b".py\x00" in flash, "%s frozen in the base" % name


def test_frozen_list_names_only_modules_of_the_rp2_image():
    assert set(uf2image.frozen_modules()) <= set(uf2image.module_sources("rp2"))


def test_the_filesystem_carries_exactly_the_modules_changed_since_the_base(tmp_path, monkeypatch, built):
    """A module whose source is not the one frozen goes into the filesystem,
    where MicroPython imports it before the frozen one: the image runs the
    tree's code whatever the base holds."""
    tree = uf2image.module_sources("rp2")
    listed = tmp_path / "frozen.txt"
    rows = ["%s %s" % (src.relative_to(ROOT), sha) for src, sha in tree.values()]
    rows[0] = rows[0][:-1] + ("0" if rows[0][-1] != "0" else "1")  # the first module changed since
    listed.write_text("# test\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(uf2image, "FROZEN_LIST", listed)
    changed = Path(rows[0].split()[0]).stem + ".mpy"
    files = built[1]
    carried, same = uf2image.carried_files("rp2", files)
    assert changed in carried and changed not in same
    assert set(carried) == {changed, "main.py", "version.txt"}
    assert set(same) == set(tree) - {changed}
    assert uf2image.carried_files("rig_pico", files) == (files, [])
