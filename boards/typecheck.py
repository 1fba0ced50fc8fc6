"""Type-check a board's modules and the firmware core against its port's stubs.

    python boards/typecheck.py BOARD          (a board of boards/table.py)
    python boards/typecheck.py --install      (make setup: every port's stubs)

The official MicroPython stubs package of each port, pinned in
boards/table.py (PORTS), lives in build/stubs/<port>/ (pip --target:
the packages conflict with each other). `make setup` installs them, so
neither this nor the tests (boards/tests/fakecheck.py reads them too)
download anything. mypy then runs with those stubs as its typeshed, so
`machine`, `rp2`, `pyb`, `esp32` and the builtins are MicroPython's, not
CPython's. Errors inside the stubs themselves are not ours and are silenced
module by module; everything under firmware/ and boards/ is checked, bodies
included (check_untyped_defs). Exit status: 0 clean, 1 type errors, 2
usage/set-up.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "boards"))
from build import sources  # noqa: E402 - one list of what goes into each image
from table import BOARDS, PORTS  # noqa: E402


def pins():
    """port -> pinned stubs package (boards/table.py)."""
    return {port: row["stubs"] for port, row in PORTS.items()}


def stubs_dir(board):
    return ROOT / "build" / "stubs" / BOARDS[board]["port"]


def _marker(port):
    return ROOT / "build" / "stubs" / port / ".installed"


def install():
    """Install every port's pinned stubs package once (again when its pin changes)."""
    for port, package in sorted(pins().items()):
        marker = _marker(port)
        if marker.exists() and marker.read_text().strip() == package:
            continue
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--upgrade",
               "--disable-pip-version-check", "--target", str(marker.parent), package]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print(r.stdout + r.stderr, file=sys.stderr)
            sys.exit("typecheck: could not install %s" % package)
        marker.write_text(package + "\n")
    return 0


def installed(port):
    """True when the port's pinned stubs are in build/stubs."""
    marker = _marker(port)
    return marker.exists() and marker.read_text().strip() == pins().get(port)


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
    if argv == ["--install"]:
        return install()
    if len(argv) != 1 or argv[0] not in BOARDS:
        print("usage: python boards/typecheck.py BOARD | --install   (BOARD: %s)" % ", ".join(sorted(BOARDS)),
              file=sys.stderr)
        return 2
    board = argv[0]
    try:
        import mypy  # noqa: F401
    except ImportError:
        print("typecheck: mypy is missing: %s -m pip install -r boards/requirements-boards.txt" % sys.executable,
              file=sys.stderr)
        return 2
    port = BOARDS[board]["port"]
    if not installed(port):
        print("typecheck: the %s stubs are not installed: run `make setup`" % port, file=sys.stderr)
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
