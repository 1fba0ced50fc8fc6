"""PIO programs of the bench rig and their arithmetic.

Quadrature out (`quadrature_out`, PIO0, 1 MHz): each TX word is
`hold << 2 | AB`; the SM sets A/B at once, then holds for the word's time, so
A/B change at exact microseconds as long as the (joined, 8-deep) FIFO never
runs dry. A word lasts hold_word() + WORD_OVERHEAD_CYCLES cycles.

Width meter (`width_meter`, PIO1, 2 MHz): waits for the fire line to rise,
then counts 2-cycle passes (1 us each) while it stays high and pushes the
count: the pulse width in us, within 1 us, with no CPU involved.
"""
from micropython import const
import rp2

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # noqa: F403 - the PIO DSL names, for the type checker only

QUAD_HZ = const(1_000_000)
WIDTH_HZ = const(2_000_000)
WORD_OVERHEAD_CYCLES = const(4)  # pull, out, out, and the last hold pass
MIN_HOLD_US = const(5)
GRAY = (0, 1, 3, 2)  # A/B as B<<1|A for count % 4; A leads B counting up


def ab_of(count):
    return GRAY[count & 3]


def hold_word(ab, hold_us):
    """The TX word that shows `ab` for hold_us microseconds (>= MIN_HOLD_US)."""
    return (hold_us * (QUAD_HZ // 1_000_000) - WORD_OVERHEAD_CYCLES) << 2 | ab


@rp2.asm_pio(out_init=[rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW], out_shiftdir=rp2.PIO.SHIFT_RIGHT,
             fifo_join=rp2.PIO.JOIN_TX)
def quadrature_out():
    pull(block)
    out(pins, 2)
    out(x, 30)
    label("hold")
    jmp(x_dec, "hold")


@rp2.asm_pio()
def width_meter():
    wait(0, pin, 0)
    wait(1, pin, 0)  # the fire line rose
    mov(x, invert(null))
    label("high")
    jmp(x_dec, "next")
    label("next")
    jmp(pin, "high")  # 2 cycles a pass while high
    mov(isr, invert(x))  # passes = ~x
    push(noblock)
