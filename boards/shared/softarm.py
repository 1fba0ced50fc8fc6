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
from micropython import const

_TX_BURST = const(8)  # link bytes sent back to back between two passes' checks
_TX_SHARE = const(64)  # of them, what a wait sends past its deadline: a loop's replies and events keep flowing


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
    mcu.Turn. A link that queues its output (stdiolink: pump()) sends it
    here, up to _TX_BURST bytes a pass between the checks, and past the
    deadline until _TX_SHARE bytes went: a loop with no idle time still
    sends its lines."""
    las = board.laser
    enc = board.encoder
    turn = board.turn
    link = board.link
    pump = getattr(link, "pump", None)
    sent = 0
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
        if pump is not None and link.tx_n:
            n = pump(_TX_BURST)
            sent += n
            if n and sent < _TX_SHARE:
                continue  # past the deadline too: stdout takes bytes, the share is not sent
        if time.ticks_diff(deadline_us, time.ticks_us()) <= 0:
            return
