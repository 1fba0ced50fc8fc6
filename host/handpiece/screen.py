"""What the operator sees during a run.

On a terminal: a block of five lines at most 80 columns wide, redrawn in place
(`rich.live`): the state, phase k/n with its own progress, the trigger point
j/n, the hand speed against the phase's band, time left at the current pace,
and one live warning when the hand is too fast, too slow or the dose is
falling short. Messages (`say`) scroll above the block.

Into a file or a pipe: plain lines, one per change worth reading (a phase
started, every quarter of a phase, a warning raised or cleared, a state
change), never a redraw.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import TextIO

from .escape import shown
from .frames import Line
from .program import Program

WIDTH = 80
REDRAW_S = 0.1  # at most ten redraws a second
PACE_WINDOW_MS = 5000  # time left is judged on the delivery rate over this much device time
UNDER_RECENT_MS = 2000  # under-dosing is warned of while the under-dosed path grew this recently

WARNINGS = {
    "fast": "TOO FAST: slow down, skin passed over gets no pulse (under-dosed)",
    "slow": "TOO SLOW: speed up to the band, the phase takes longer",
    "under": "UNDER-DOSING: path without pulses ({mm:.0f} mm this phase): slow down",
    "moved": "HOLD STILL: the hand left the point; press again to start a new one",
}


class Screen:
    def __init__(self, program: Program, out: TextIO = sys.stdout, width: int | None = None):
        self.program = program
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._lock = threading.RLock()
        self.state = "-"
        self.phase = 0
        self.phase_pulses = 0
        self.e_mj = 0
        self.speed = 0
        self.under_mm = 0.0
        self._under_grew_ms: int | None = None  # device time the under-dosed path last grew
        self.t_ms = 0
        self.foot = "0"
        self.open = "-"
        self.points_done: dict[int, int] = {}
        self.aborted = False
        self.warning = ""
        self._pace: deque[tuple[int, int]] = deque()
        self._phase_mj_before = [0] * len(program.phases)  # session energy when each phase began
        self._last_draw = 0.0
        self._last_plain: dict[str, object] = {}
        self._live = None
        self.width = width or (min(WIDTH, _columns(out)) if self.tty else WIDTH)
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self.console = Console(file=out, width=self.width, force_terminal=True, highlight=False)
            self._live = Live(console=self.console, auto_refresh=False, transient=False,
                              redirect_stdout=False, redirect_stderr=False)

    # -- input

    def status(self, st: dict[str, str]) -> None:
        with self._lock:
            ph = _int(st.get("ph"), self.phase)
            if ph != self.phase:
                self._phase_mj_before[min(ph, len(self._phase_mj_before) - 1)] = self.e_mj
                self.phase = ph
                self.aborted = False
                self._pace.clear()
                self._under_grew_ms = None
            self.state = st.get("state", self.state)
            self.phase_pulses = _int(st.get("pulses"), self.phase_pulses)
            self.e_mj = _int(st.get("e_mj"), self.e_mj)
            self.speed = _int(st.get("v_mm_s"), self.speed)
            t = _int(st.get("t"), self.t_ms)
            self.t_ms = t
            under = _float(st.get("under_mm"), self.under_mm)
            if under > self.under_mm:
                self._under_grew_ms = t
            self.under_mm = under
            self.foot = st.get("foot", self.foot)
            self.open = st.get("open", self.open)
            if self.state == "EMITTING":
                self._pace.append((t, self.e_mj))
                while self._pace and t - self._pace[0][0] > PACE_WINDOW_MS:
                    self._pace.popleft()
            self.warning = self._warning()
            self._show()

    def event(self, ln: Line) -> None:
        with self._lock:
            if ln.name == "point-done":
                ph = _int(ln.fields.get("ph"), self.phase)
                self.points_done[ph] = self.points_done.get(ph, 0) + 1
                self.aborted = False
            elif ln.name == "point-abort":
                self.aborted = True
            elif ln.name == "phase-done":
                f = ln.fields
                self.say(f"phase {_int(f.get('ph'), 0) + 1} done: {_int(f.get('e_mj'), 0) / 1000:.2f} J in "
                         f"{_int(f.get('pulses'), 0)} pulses, {_float(f.get('under_mm'), 0):.1f} mm of path "
                         f"without pulses, {_int(f.get('skipped'), 0)} held back by the dwell limit")
            elif ln.name == "session-done":
                self.say(f"session done: {_int(ln.fields.get('e_mj'), 0) / 1000:.2f} J")
            elif ln.name == "fault":
                self.say(f"FAULT {shown(ln.text)}: emission stopped (docs/operator.md: after a fault)")

    def say(self, text: str) -> None:
        """A message above the live block (or a plain line)."""
        with self._lock:
            if self._live is not None:
                self.console.print(text, markup=False, highlight=False)
            else:
                self.out.write(text + "\n")
                self.out.flush()

    def start(self) -> None:
        if self._live is not None and not self._live.is_started:
            self._live.start()

    def close(self) -> None:
        with self._lock:
            if self._live is not None and self._live.is_started:
                self._live.update(self._render(), refresh=True)
                self._live.stop()

    # -- what is shown

    def _ph(self):
        return self.program.phases[min(self.phase, len(self.program.phases) - 1)]

    def _warning(self) -> str:
        ph = self._ph()
        if self.aborted:
            return WARNINGS["moved"]
        if self.state != "EMITTING" or ph.mode != "scan":
            return ""
        if self.speed > ph["speed_max_mm_s"]:
            return WARNINGS["fast"]
        if 0 < self.speed < ph["speed_min_mm_s"]:
            return WARNINGS["slow"]
        if self._under_grew_ms is not None and self.t_ms - self._under_grew_ms <= UNDER_RECENT_MS:
            return WARNINGS["under"].format(mm=self.under_mm)
        return ""

    def time_left_s(self) -> float | None:
        """Seconds to the end of the phase at the delivery rate of the last
        few seconds of emission; None when there is no pace yet."""
        if len(self._pace) < 2:
            return None
        (t0, e0), (t1, e1) = self._pace[0], self._pace[-1]
        if t1 <= t0 or e1 <= e0:
            return None
        ph = self._ph()
        left_mj = max(0, ph.pulses - self.phase_pulses) * ph.pulse_j * 1000
        return float(left_mj) / ((e1 - e0) / (t1 - t0)) / 1000

    def lines(self) -> list[str]:
        """The block, each line at most `self.width` characters."""
        n = len(self.program.phases)
        ph = self._ph()
        total_j = float(self.program.delivered_j)
        e_j = self.e_mj / 1000
        head = f"{shown(self.program.name)}"
        right = f"{self.state:<9} session {e_j:7.1f}/{total_j:.0f} J"
        lines = [_fit(head, self.width - len(right) - 1) + " " + right]
        frac = min(1.0, self.phase_pulses / ph.pulses) if ph.pulses else 0.0
        bar_n = 20
        filled = int(bar_n * frac)
        bar = "#" * filled + "." * (bar_n - filled)
        ph_j = self.phase_pulses * float(ph.pulse_j)
        right = f"[{bar}] {ph_j:6.1f}/{float(ph.delivered_j):.0f} J {frac * 100:3.0f}%"
        lines.append(_fit(f"phase {self.phase + 1}/{n} {shown(ph.name)}", self.width - len(right) - 1)
                     + " " + right)
        left = self.time_left_s()
        left_s = "--" if left is None else _duration(left)
        if ph.mode == "point":
            points = int(ph["points"])
            j = min(points, self.points_done.get(self.phase, 0) + 1)
            lines.append(f"trigger point {j}/{points}: hold still (within {ph['tol_mm']} mm)"
                         f"   time left {left_s}")
        else:
            lo, hi = int(ph["speed_min_mm_s"]), int(ph["speed_max_mm_s"])
            lines.append(f"hand {self.speed:4d} mm/s  band {lo}-{hi} mm/s  {_gauge(self.speed, lo, hi)}"
                         f"  time left {left_s}")
        foot = "down" if self.foot == "1" else "up"
        interlocks = "closed" if self.open in ("-", "") else f"OPEN: {shown(self.open)}"
        lines.append(f"footswitch {foot}   interlocks {interlocks}   under-dosed {self.under_mm:.0f} mm")
        lines.append(f"! {self.warning}" if self.warning else "")
        return [_fit(s, self.width) for s in lines]

    def _render(self):
        from rich.text import Text

        out = Text(no_wrap=True, overflow="ellipsis")
        for i, s in enumerate(self.lines()):
            style = "bold reverse" if s.startswith("! ") else ("bold" if i == 0 else "")
            out.append(s + "\n", style=style)
        out.rstrip()
        return out

    def _show(self) -> None:
        if self._live is not None:
            now = time.monotonic()
            if self._live.is_started and now - self._last_draw >= REDRAW_S:
                self._last_draw = now
                self._live.update(self._render(), refresh=True)
            return
        # plain lines: only what changed in a way worth a line
        ph = self._ph()
        quarter = int(4 * self.phase_pulses / ph.pulses) if ph.pulses else 0
        key = {"state": self.state, "phase": self.phase, "quarter": quarter, "warning": self.warning}
        if key == self._last_plain:
            return
        self._last_plain = key
        ph_j = self.phase_pulses * float(ph.pulse_j)
        text = (f"{self.state} phase {self.phase + 1}/{len(self.program.phases)} {ph_j:.1f}/"
                f"{float(ph.delivered_j):.0f} J, session {self.e_mj / 1000:.1f} J, {self.speed} mm/s")
        if self.warning:
            text += f" ! {self.warning}"
        self.out.write(text + "\n")
        self.out.flush()


def _gauge(v: int, lo: int, hi: int) -> str:
    """Where the speed sits: [<  |=====|  >], the marker * inside or past the band."""
    n = 15
    top = hi * 1.5
    cells = ["-"] * n
    a, b = int(n * lo / top), int(n * hi / top)
    for i in range(a, min(b + 1, n)):
        cells[i] = "="
    cells[min(n - 1, int(n * v / top))] = "*"
    return "[" + "".join(cells) + "]"


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def _fit(s: str, n: int) -> str:
    if n <= 0:
        return ""
    return s if len(s) <= n else s[: max(0, n - 1)] + "~"


def _int(v: str | None, default: int) -> int:
    try:
        return int(v) if v is not None else default
    except ValueError:
        return default


def _float(v: str | None, default: float) -> float:
    try:
        return float(v) if v is not None else default
    except ValueError:
        return default


def _columns(out: TextIO) -> int:
    import os

    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return WIDTH
