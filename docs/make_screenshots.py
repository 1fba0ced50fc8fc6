"""Make the two pictures in docs/operator.md from a real run on the simulated
board: the terminal (80 x 24, through a terminal emulator, at a moment the
screen shows a warning) and the PNG report of the same run.

    .venv/bin/python docs/make_screenshots.py
"""
from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import sys
import tempfile
import termios
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pyte

ROOT = Path(__file__).resolve().parents[1]
COLS, ROWS = 80, 24


def run_in_terminal(out_dir: Path) -> bytes:
    tool = Path(sys.executable).parent / "handpiece"
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execv(str(tool), [str(tool), "run", "programs/knee-oa-reference.toml", "--out", str(out_dir)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    raw = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        raw += data
    os.waitpid(pid, 0)
    return raw


def pick_frame(raw: bytes) -> pyte.Screen:
    """The terminal just before a redraw, at the first one showing the
    first phase part way with a warning up, else the middle of the run."""
    starts = [m.start() for m in re.finditer(rb"\r\x1b\[2K\x1b\[1A", raw)]
    chosen = starts[len(starts) // 2]
    for at in starts:
        screen = pyte.Screen(COLS, ROWS)
        screen.set_mode(pyte.modes.LNM)
        pyte.ByteStream(screen).feed(raw[:at])
        text = "\n".join(screen.display)
        if re.search(r"phase 1/3 .* ([3-7]\d)%", text) and "\n! " in text:
            chosen = at
            break
    screen = pyte.Screen(COLS, ROWS)
    screen.set_mode(pyte.modes.LNM)
    pyte.ByteStream(screen).feed(raw[:chosen])
    return screen


def draw(screen: pyte.Screen, png: Path) -> None:
    w, h = COLS * 0.105, ROWS * 0.22
    fig = plt.figure(figsize=(w, h), dpi=110)
    fig.patch.set_facecolor("#101010")
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, COLS)
    ax.set_ylim(ROWS, 0)
    ax.axis("off")
    for y in range(ROWS):
        line = screen.buffer[y]
        text = "".join(line[x].data for x in range(COLS)).rstrip()
        if not text:
            continue
        reverse = line[0].reverse
        bold = line[0].bold
        if reverse:
            ax.add_patch(plt.Rectangle((0, y + 0.05), len(text), 0.95, color="#e8e8e8"))
        ax.text(0.3, y + 0.55, text, family="DejaVu Sans Mono", fontsize=12.4, va="center", ha="left",
                color="#101010" if reverse else "#e8e8e8", weight="bold" if bold or reverse else "normal")
    fig.savefig(png, facecolor=fig.get_facecolor())
    plt.close(fig)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        raw = run_in_terminal(runs)
        draw(pick_frame(raw), ROOT / "docs/operator-terminal.png")
        shutil.copy(runs / "latest" / "report.png", ROOT / "docs/operator-report.png")
    print("docs/operator-terminal.png, docs/operator-report.png")


if __name__ == "__main__":
    main()
