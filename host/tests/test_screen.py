"""The screen during a run: 80 columns, redrawn in place on a terminal
(checked in a pseudo-terminal through a terminal emulator), plain lines
into a pipe, and what the operator acts on."""
import fcntl
import io
import os
import pty
import re
import struct
import sys
import termios
from pathlib import Path

import pyte

from handpiece import cli
from handpiece.frames import Line
from handpiece.program import parse
from handpiece.screen import Screen

SHORT = """
[program]
name = "short test session with a rather long name for the top line of the screen"

[[phase]]
name = "scan over the front of the knee, a long phase name that must be cut"
mode = "scan"
width_us = 120
power_w = 3000
rate_hz = 30
spacing_mm = 3.6
speed_min_mm_s = 70
speed_max_mm_s = 130
energy_j = 40

[[phase]]
name = "trigger points"
mode = "point"
width_us = 120
power_w = 3000
rate_hz = 10
points = 3
tol_mm = 0.5
energy_j = 6
"""


def _program():
    import tomllib

    return parse(tomllib.loads(SHORT), "short.toml")


def _status(**f):
    base = {"t": "1000", "state": "EMITTING", "open": "-", "foot": "1", "fault": "0", "ph": "0", "pulses": "0",
            "e_mj": "0", "under_mm": "0.000", "v_mm_s": "100"}
    base.update({k: str(v) for k, v in f.items()})
    return base


def test_block_fits_80_columns_and_shows_what_the_operator_acts_on():
    scr = Screen(_program(), io.StringIO(), width=80)
    scr.status(_status(t=1000, pulses=10, e_mj=3600))
    scr.status(_status(t=2000, pulses=40, e_mj=14400, v_mm_s=100))
    lines = scr.lines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("short test session") and "EMITTING" in lines[0] and "14.4/" in lines[0]
    assert lines[1].startswith("phase 1/2 scan over") and "14.4/40 J" in lines[1] and "36%" in lines[1]
    assert "hand  100 mm/s  band 70-130 mm/s" in lines[2]
    # 40 of 111 pulses in 1 s of device time at 10.8 J/s: 71 pulses (25.6 J) take 2 s more
    assert "time left 2 s" in lines[2]
    assert lines[4] == ""  # no warning while in the band
    scr.status(_status(t=2100, pulses=41, e_mj=14760, v_mm_s=180))
    assert scr.lines()[4].startswith("! TOO FAST")
    scr.status(_status(t=2200, pulses=42, e_mj=15120, v_mm_s=40))
    assert scr.lines()[4].startswith("! TOO SLOW")
    scr.status(_status(t=2300, pulses=43, e_mj=15480, v_mm_s=100, under_mm="4.2"))
    assert scr.lines()[4].startswith("! UNDER-DOSING") and "4 mm" in scr.lines()[4]
    scr.status(_status(t=4400, pulses=50, e_mj=18000, v_mm_s=100, under_mm="4.2"))
    assert scr.lines()[4] == ""  # the path stopped growing unpulsed: the warning goes


def test_trigger_point_j_of_n_and_a_hand_that_moved_off():
    scr = Screen(_program(), io.StringIO(), width=80)
    scr.status(_status(ph=1, pulses=0, e_mj=39960, v_mm_s=0))
    assert "trigger point 1/3" in scr.lines()[2]
    scr.event(Line("ev", t_ms=1, name="point-done", fields={"ph": "1", "point": "0"}))
    assert "trigger point 2/3" in scr.lines()[2]
    scr.event(Line("ev", t_ms=2, name="point-abort", fields={"ph": "1", "point": "1"}))
    scr.status(_status(ph=1, pulses=7, state="PAUSED"))
    assert scr.lines()[4].startswith("! HOLD STILL")


def test_control_characters_in_device_text_are_escaped():
    out = io.StringIO()
    scr = Screen(_program(), out, width=80)
    scr.event(Line("ev", t_ms=1, name="fault", text="F06 x\x1b[2J\u202e", fields={}))
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue() and "\\u001b[2J" in out.getvalue()


def test_into_a_pipe_plain_lines_without_escapes(tmp_path, capsys):
    prog = tmp_path / "short.toml"
    prog.write_text(SHORT)
    assert cli.main(["run", str(prog), "--out", str(tmp_path / "runs"), "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert re.search(r"^EMITTING phase 1/2 ", out, re.M) and "phase 2 done" in out
    assert len(out.splitlines()) < 80  # a line per change worth reading, not per status


def test_in_an_80_column_terminal_the_block_is_redrawn_in_place(tmp_path):
    prog = tmp_path / "short.toml"
    prog.write_text(SHORT)
    handpiece = Path(sys.executable).parent / "handpiece"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the tool, in the pseudo-terminal
        os.chdir(tmp_path)
        os.execv(str(handpiece), [str(handpiece), "run", str(prog), "--out", "runs", "--no-png"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    raw = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        raw += data
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, raw[-2000:]
    frames = [m.start() for m in re.finditer(rb"\r\x1b\[2K\x1b\[1A", raw)]  # each redraw starts so
    assert len(frames) > 5  # redrawn (cursor up), not appended
    term = pyte.HistoryScreen(80, 24, history=5000)
    term.set_mode(pyte.modes.LNM)
    stream = pyte.ByteStream(term)
    stream.feed(raw[: frames[len(frames) // 2]])  # mid-run, just before a redraw
    shown = [line.rstrip() for line in term.display if line.strip()]
    block = shown[-5:] if shown[-1].startswith("! ") else shown[-4:]
    # each line of the block on its own terminal line: nothing wrapped past 80 columns
    assert block[0].startswith("short test session") and "session" in block[0]
    assert re.match(r"phase [12]/2 ", block[1])
    assert re.match(r"(hand +\d+ mm/s  band 70-130 mm/s|trigger point [1-3]/3)", block[2])
    assert block[3].startswith("footswitch ")
    stream.feed(raw[frames[len(frames) // 2]:])
    scrolled = len(term.history.top)
    assert scrolled < 40  # the whole run, summary included, scrolls a screenful or so
    final = "\n".join(line.rstrip() for line in term.display)
    assert "files written:" in final and "ended: done" in "\n".join(
        "".join(ch.data for ch in row.values()) for row in term.history.top) + final


def test_operator_guide_explains_every_warning_and_shows_both_pictures():
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs/operator.md").read_text()
    from handpiece.screen import WARNINGS

    for text in WARNINGS.values():
        assert f"| `{text.split(':')[0]}` |" in guide
    for png in re.findall(r"!\[[^]]*\]\(([^)]+)\)", guide):
        assert (root / "docs" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(re.findall(r"!\[", guide)) == 2
