"""The simulated encoder: the hand's position in counts from keyframes."""
from micropython import const

from keyframes import position

_KEYFRAMES = const(1024)


class Encoder:
    """Hand position from keyframes; linear between them, held after the last."""

    def __init__(self, board):
        self._b = board
        self.kt = []  # keyframe times, virtual us, increasing
        self.kx = []  # keyframe positions, counts

    def count(self):
        return self.at(self._b.t)

    def add(self, t, x):
        if self.kt and t <= self.kt[-1]:
            raise ValueError("keyframe time must increase")
        if len(self.kt) >= _KEYFRAMES:
            raise ValueError("keyframe queue full (%d)" % _KEYFRAMES)
        self.kt.append(t)
        self.kx.append(x)

    def clear(self, x):
        self.kt = [self._b.t]
        self.kx = [x]

    def prune(self, t):
        """Drop keyframes wholly in the past; keep the one the present starts from."""
        while len(self.kt) >= 2 and self.kt[1] <= t:
            self.kt.pop(0)
            self.kx.pop(0)

    def at(self, t):
        return position(self.kt, self.kx, t)

    def next_turn(self, t):
        """Time of the next keyframe after t (where the hand may turn), or -1."""
        for kt in self.kt:
            if kt > t:
                return kt
        return -1

    def reach(self, target, d, t0, t1):
        """Earliest t in [t0, t1] with position*d >= target*d, or -1."""
        if self.at(t0) * d >= target * d:
            return t0
        kt, kx = self.kt, self.kx
        for i in range(1, len(kt)):
            a, b = kt[i - 1], kt[i]
            if b < t0 or a > t1:
                continue
            xa, xb = kx[i - 1] * d, kx[i] * d
            if xb < target * d or xb <= xa:
                continue
            # xa + (xb - xa) * (t - a) // (b - a) >= target*d, smallest integer t
            num = (target * d - xa) * (b - a)
            t = a + max(0, -(-num // (xb - xa)))
            while xa + (xb - xa) * (t - a) // (b - a) < target * d:
                t += 1
            t = max(t, t0)
            return t if t <= t1 else -1
        return -1

