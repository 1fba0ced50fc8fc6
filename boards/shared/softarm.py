"""The one-shot arm condition of hal `laser.arm`, checked in software.

Boards without a hardware count compare (rp2, esp32) hold the armed request
here and test it from their wait loop: due() is true at the first check where
the time is not before `not_before` and the encoder count has reached
`target` in direction `dir` (dir 0: time only). The firing latency is
therefore the board's check interval, stated in each board's docstring.
Integer work only, no allocation: callable from an interrupt handler.
"""
import time


class SoftArm:
    def __init__(self):
        self.armed = False
        self.not_before = 0
        self.target = 0
        self.dir = 0

    def arm(self, not_before_us, target, direction):
        self.not_before = not_before_us
        self.target = target
        self.dir = direction
        self.armed = True

    def due(self, now_us, count):
        if not self.armed or time.ticks_diff(now_us, self.not_before) < 0:
            return False
        return (count - self.target) * self.dir >= 0
