"""The one-shot arm condition of hal `laser.arm`, checked in software.

Boards without a hardware count compare (rp2, esp32) hold the armed request
here and test it from their wait loop (rp2 also from its count IRQ, whose
handler calls due() too): due() is true at the first check where
the time is not before `not_before` and the encoder count has reached
`target` in direction `dir` (dir 0: time only). The firing latency is
therefore the board's check interval, stated in each board's docstring.
SoftArm is integer work only, no allocation: callable from an interrupt
handler. wait() is the wait loop of every MCU board (stm32 too: its
laser.check() polls the timer compare instead of a SoftArm); it also
returns when the encoder changes direction (mcu.Turn), as the HAL contract
asks.
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


def wait(board, deadline_us):
    """board.wait() for these boards: spin until the deadline or an event
    (woken by an input IRQ, a byte on the link, the encoder turned, the armed
    pulse fired), letting board.laser.check(count) fire the armed pulse on
    each pass. A byte on the link returns first, so an armed pulse never
    fires while a stop byte waits to be read. board.turn is the board's
    mcu.Turn."""
    las = board.laser
    enc = board.encoder
    turn = board.turn
    link = board.link
    while True:
        if board.woken:
            board.woken = False
            return
        if link.any():  # before any firing: a pending '!' is read before the next pulse (SR-2)
            return
        count = enc.count()
        if turn.turned(count):
            return
        if las.armed() and las.check(count):
            return
        if time.ticks_diff(deadline_us, time.ticks_us()) <= 0:
            return
