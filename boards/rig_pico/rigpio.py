"""PIO programs of the bench rig and their arithmetic.

Quadrature out (`quadrature_out`, PIO0, QUAD_HZ): one run of encoder counts
per three TX words, so the rig's Python loop does no work per count:
  1. the A/B pattern: 16 A/B values (B<<1|A, the first in bits 1..0), the
     next 4 counts up or down from where A/B stand, repeated (pattern());
  2. the first delay in cycles (from the run's start to its first change);
  3. (period - PERIOD_OVERHEAD_CYCLES) << 12 | (changes - 1), the period
     below 2**18 cycles (33 ms) unless there is one change.
The SM shows the pattern's next value after the first delay, then after each
period, rotating the pattern in its ISR; a hold is a run of one change to the
same value. The first change comes FIRST_OVERHEAD_CYCLES + delay after the
run's start, the next run starts TAIL_CYCLES after its last change, so A/B change at exact cycles as long as
the (joined, 8-deep) FIFO never runs dry.

Width meter (`width_meter`, PIO1, 2 MHz): waits for the fire line to rise,
then counts 2-cycle passes (1 us each) while it stays high and pushes the
count: the pulse width in us, within 1 us, with no CPU involved.
"""
from micropython import const
import rp2

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # noqa: F403 - the PIO DSL names, for the type checker only

QUAD_HZ = const(8_000_000)
CYCLES_PER_US = const(8)  # QUAD_HZ // 1_000_000
WIDTH_HZ = const(2_000_000)
FIRST_OVERHEAD_CYCLES = const(7)  # 3 pulls, 2 movs, out, the last delay pass
TAIL_CYCLES = const(3)  # in, jmp, then the next run's first pull
PERIOD_OVERHEAD_CYCLES = const(6)  # in, jmp, mov, the last wait pass, jmp, mov
MAX_CHANGES = const(4096)  # one run's changes: 12 bits of its third word
GRAY = (0, 1, 3, 2)  # A/B as B<<1|A for count % 4; A leads B counting up


def ab_of(count):
    return GRAY[count & 3]


def _pattern(count, step):
    w = 0
    for i in range(16):
        w |= ab_of(count + step * (i + 1)) << (2 * i)
    return w


# The 12 patterns (count % 4 x down/still/up), built once: most are not
# small ints, and the refill loop must not allocate them.
_PATTERNS = tuple(_pattern(c, s) for s in (-1, 0, 1) for c in range(4))


def pattern(count, step):
    """Pattern word for the counts after `count` in direction step (-1, 0, 1)."""
    return _PATTERNS[(step + 1) * 4 + (count & 3)]


def period_word(period_cycles, changes):
    """The third word (a small int); one change needs no period."""
    if changes == 1:
        return 0
    return (period_cycles - PERIOD_OVERHEAD_CYCLES) << 12 | (changes - 1)


@rp2.asm_pio(out_init=[rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW], out_shiftdir=rp2.PIO.SHIFT_RIGHT,
             in_shiftdir=rp2.PIO.SHIFT_RIGHT, fifo_join=rp2.PIO.JOIN_TX)
def quadrature_out():
    label("top")
    pull(block)
    mov(isr, osr)  # the pattern
    pull(block)
    mov(x, osr)  # the first delay
    pull(block)
    out(y, 12)  # changes - 1; the OSR keeps period - overhead
    label("first")
    jmp(x_dec, "first")
    label("change")
    mov(pins, isr)
    in_(isr, 2)  # rotate the pattern right by one A/B value
    jmp(not_y, "top")
    mov(x, osr)
    label("wait")
    jmp(x_dec, "wait")
    jmp(y_dec, "change")  # y > 0 here: always taken


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
