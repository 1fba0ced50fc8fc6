"""Hand-motion profiles for the rig: piecewise-linear position over time.

A profile is a list of (t_s, x_mm) points; the hand moves in straight lines
between them. Builders cover what a therapist's hand does: steady sweeps,
ramps, stops, reversals, tremor (jitter) and over-speed; `from_csv` replays a
recorded profile (two columns: time in s, position in mm).
"""
from __future__ import annotations

import csv
import math
import random
from bisect import bisect_right
from pathlib import Path


class ProfileError(ValueError):
    pass


class Motion:
    def __init__(self, x0_mm: float = 0.0):
        self.points: list[tuple[float, float]] = [(0.0, x0_mm)]

    @property
    def end_s(self) -> float:
        return self.points[-1][0]

    @property
    def x_mm(self) -> float:
        return self.points[-1][1]

    def _add(self, dt_s: float, x_mm: float) -> Motion:
        if dt_s <= 0:
            raise ProfileError(f"time step must be positive, got {dt_s}")
        self.points.append((self.end_s + dt_s, x_mm))
        return self

    def move(self, dx_mm: float, speed_mm_s: float) -> Motion:
        """Travel dx_mm (signed) at a constant speed."""
        if speed_mm_s <= 0:
            raise ProfileError(f"speed must be positive, got {speed_mm_s}")
        return self._add(abs(dx_mm) / speed_mm_s, self.x_mm + dx_mm)

    def hold(self, s: float) -> Motion:
        return self._add(s, self.x_mm)

    def sweeps(self, length_mm: float, speed_mm_s: float, n: int) -> Motion:
        """n strokes back and forth over length_mm (reversals at each end)."""
        for i in range(n):
            self.move(length_mm if i % 2 == 0 else -length_mm, speed_mm_s)
        return self

    def ramp(self, dx_mm: float, v0: float, v1: float, steps: int = 20) -> Motion:
        """Travel dx_mm with the speed going linearly from v0 to v1."""
        for i in range(steps):
            v = v0 + (v1 - v0) * (i + 0.5) / steps
            self.move(dx_mm / steps, v)
        return self

    def jitter(self, amplitude_mm: float, period_s: float, duration_s: float, seed: int = 1) -> Motion:
        """Tremor about the current place: no net travel."""
        rng = random.Random(seed)
        x0 = self.x_mm
        t = 0.0
        while t < duration_s:
            step = period_s / 2
            self._add(step, x0 + rng.uniform(-amplitude_mm, amplitude_mm))
            t += step
        return self._add(period_s / 2, x0)

    @classmethod
    def from_csv(cls, path: str | Path) -> Motion:
        """A recorded profile: rows of `time_s,position_mm`, time increasing."""
        p = Path(path)
        try:
            rows = list(csv.reader(p.open()))
        except OSError as e:
            raise ProfileError(f"cannot read profile {p}: {e.strerror}") from e
        pts = []
        for n, row in enumerate(rows, 1):
            if not row or row[0].startswith("#") or row[0].strip() == "time_s":
                continue
            try:
                t, x = float(row[0]), float(row[1])
            except (ValueError, IndexError) as e:
                raise ProfileError(f"{p}:{n}: want time_s,position_mm, got {row!r}") from e
            if not (math.isfinite(t) and math.isfinite(x)):
                raise ProfileError(f"{p}:{n}: not a finite number")
            if pts and t <= pts[-1][0]:
                raise ProfileError(f"{p}:{n}: time must increase ({t} after {pts[-1][0]})")
            pts.append((t, x))
        if len(pts) < 2:
            raise ProfileError(f"{p}: a profile needs at least two rows")
        m = cls(pts[0][1])
        t0 = pts[0][0]
        m.points = [(t - t0, x) for t, x in pts]
        return m

    # -- evaluation (for tests and reports)

    def x_at(self, t_s: float) -> float:
        ts = [p[0] for p in self.points]
        i = bisect_right(ts, t_s)
        if i == 0:
            return self.points[0][1]
        if i >= len(self.points):
            return self.points[-1][1]
        (t0, x0), (t1, x1) = self.points[i - 1], self.points[i]
        return x0 + (x1 - x0) * (t_s - t0) / (t1 - t0)

    def path_mm_at(self, t_s: float) -> float:
        """Distance travelled along the skin by t_s, reversals included."""
        total = 0.0
        for (t0, x0), (t1, x1) in zip(self.points, self.points[1:]):
            if t_s <= t0:
                break
            if t_s >= t1:
                total += abs(x1 - x0)
            else:
                total += abs(x1 - x0) * (t_s - t0) / (t1 - t0)
        return total

    def keyframes(self, counts_per_mm: int, t0_us: int = 0) -> list[tuple[int, int]]:
        """(time in us, position in counts) on the board timeline from t0_us."""
        out: list[tuple[int, int]] = []
        for t, x in self.points:
            tu = t0_us + round(t * 1e6)
            if out and tu <= out[-1][0]:
                continue
            out.append((tu, round(x * counts_per_mm)))
        return out
