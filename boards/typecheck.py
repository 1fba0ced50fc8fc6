"""Type-check a board's modules and the firmware core against its port's stubs.

    python boards/typecheck.py BOARD      (rp2, stm32, esp32, rig_pico)
    python boards/typecheck.py --install-stubs     (make setup runs this)

--install-stubs puts the official MicroPython stubs package of each port
into build/stubs/<port>/ (pip --target: the packages conflict with each
other); a check never downloads. It runs mypy with those stubs as its
typeshed, so `machine`, `rp2`, `pyb`, `esp32` and the builtins are
MicroPython's, not CPython's. Errors inside the stubs themselves are not
ours and are silenced module by module; everything under firmware/ and boards/ is checked, bodies included
(check_untyped_defs). Exit status: 0 clean, 1 type errors, 2 usage/set-up.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUBS = {  # board -> (stubs folder, pinned package)
    "rp2": ("rp2", "micropython-rp2-rpi-pico-stubs==1.29.0.post1"),
    "rig_pico": ("rp2", "micropython-rp2-rpi-pico-stubs==1.29.0.post1"),
    "stm32": ("stm32", "micropython-stm32-pybv11-stubs==1.29.0.post1"),
    "esp32": ("esp32", "micropython-esp32-esp32-generic-s3-stubs==1.29.0.post1"),
}
sys.path.insert(0, str(ROOT / "boards"))
from build import BOARDS, sources  # noqa: E402 - one list of what goes into each image


def stubs_dir(board, install=False):
    folder, package = STUBS[board]
    path = ROOT / "build" / "stubs" / folder
    marker = path / (package.split("==")[0].replace("-", "_") + ".installed")
    if not marker.exists():
        if not install:
            print("typecheck: the %s stubs are not installed: run `make setup` (or %s boards/typecheck.py "
                  "--install-stubs)" % (folder, sys.executable), file=sys.stderr)
            sys.exit(2)
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--upgrade",
               "--disable-pip-version-check", "--target", str(path), package]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print(r.stdout + r.stderr, file=sys.stderr)
            sys.exit("typecheck: could not install %s" % package)
        marker.write_text(package + "\n")
    return path


def stub_modules(path):
    """Top-level module names the stubs folder provides (their errors are silenced)."""
    names = set()
    for p in path.iterdir():
        if p.suffix == ".pyi":
            names.add(p.stem)
        elif p.is_dir() and not p.name.endswith(("-info", "stdlib")) and not p.name.startswith("."):
            names.add(p.name)
    return sorted(names)


def config(board, path):
    base = (ROOT / "boards" / "mypy.ini").read_text()
    sections = "".join("\n[mypy-%s,%s.*]\nignore_errors = True\n" % (m, m) for m in stub_modules(path))
    out = ROOT / "build" / ("typecheck-%s.ini" % board)
    out.write_text(base + "\n# generated: errors inside the stubs are the stubs'\n" + sections)
    return out


def main(argv):
    if argv == ["--install-stubs"]:
        for board in STUBS:
            stubs_dir(board, install=True)
        return 0
    if len(argv) != 1 or argv[0] not in STUBS:
        print("usage: python boards/typecheck.py BOARD | --install-stubs   (BOARD: %s)" % ", ".join(sorted(STUBS)),
              file=sys.stderr)
        return 2
    board = argv[0]
    try:
        import mypy  # noqa: F401
    except ImportError:
        print("typecheck: mypy is missing: %s -m pip install -r boards/requirements-boards.txt" % sys.executable,
              file=sys.stderr)
        return 2
    path = stubs_dir(board)
    files = [str(p) for p in sources(board)]
    search = [str(path), str(ROOT / "firmware"), str(ROOT / "boards" / "shared"), str(ROOT / "boards" / board)]
    env = dict(os.environ, MYPYPATH=os.pathsep.join(search))
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(config(board, path)),
           "--custom-typeshed-dir", str(path), "--cache-dir", str(ROOT / "build" / "mypy-cache" / board)]
    return subprocess.run(cmd + files, env=env, cwd=ROOT).returncode and 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
