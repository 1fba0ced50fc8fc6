"""PIO programs of the rp2 board, and the arithmetic that goes with them.

PIO0 belongs to the encoder, PIO1 to the pulse output.

Quadrature decoder (`quadrature`): X holds the count, Y the previous A/B
state. Each pass samples A/B, forms `previous << 2 | now` (0..15) and jumps
through a 16-entry table to +1, -1 or no change, then pushes X to the RX FIFO
without blocking. The table jumps by absolute address (`mov pc`), so it must
sit at address 0: the program is padded to the full 32 instructions, which
leaves the allocator no other place. A pass takes 8 to 13 cycles (at most
104 ns at 125 MHz): two edges closer than that read as an invalid change and
are not counted. The handpiece makes about 2,000 edges/s at 100 mm/s. Each
count change also sets IRQ flag 0, SM0's own (`irq(0)`: the encoder is SM0):
the board's count IRQ (board.py) compares the new count with the armed
pulse's, so the compare no longer waits for the core's wait loop.

Pulse (`pulse`): the SM waits on its TX FIFO; a word N raises the fire pin,
holds it for N+2 cycles and drops it. Run at PULSE_HZ from an integer clock
divider, a width of w us is exactly w * PULSE_HZ / 1e6 cycles.
"""
from micropython import const
import rp2

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # noqa: F403 - the PIO DSL names, for the type checker only

SYS_HZ = const(125_000_000)  # system clock set by the board (machine.freq)
PULSE_HZ = const(5_000_000)  # 200 ns per pulse SM cycle: divider 25, integer
PULSE_OVERHEAD_CYCLES = const(2)  # set-high and set-low around the hold loop
COUNT_ZERO = const(0x2000_0000)  # X starts here so reads stay small ints (+-2^29 counts)

# Table entry for (previous << 2 | now), states as B<<1|A; A leads B going +1:
# A/B goes 00 -> 01 -> 11 -> 10 (as B<<1|A: 0 -> 1 -> 3 -> 2) counting up.
UP = (1, 7, 14, 8)  # 0->1, 1->3, 3->2, 2->0
DOWN = (4, 13, 11, 2)  # 1->0, 3->1, 2->3, 0->2


def table_step(code):
    """The count change the decoder table applies for `code`: +1, -1 or 0."""
    return 1 if code in UP else -1 if code in DOWN else 0


def divider(sys_hz, sm_hz):
    """Integer clock divider for sm_hz, or 0 when no integer divider gives it."""
    return sys_hz // sm_hz if sys_hz % sm_hz == 0 and sys_hz // sm_hz <= 65535 else 0


def width_word(width_us):
    """The FIFO word that makes a pulse exactly `width_us` long."""
    return width_us * (PULSE_HZ // 1_000_000) - PULSE_OVERHEAD_CYCLES


@rp2.asm_pio(in_shiftdir=rp2.PIO.SHIFT_LEFT, out_shiftdir=rp2.PIO.SHIFT_RIGHT)
def quadrature():
    # 0..15: (previous << 2 | now) -> change; entries follow UP and DOWN above
    jmp("same")  # 0: 0->0
    jmp("up")  # 1: 0->1
    jmp("down")  # 2: 0->2
    jmp("same")  # 3: 0->3 invalid (both changed)
    jmp("down")  # 4: 1->0
    jmp("same")  # 5: 1->1
    jmp("same")  # 6: 1->2 invalid
    jmp("up")  # 7: 1->3
    jmp("up")  # 8: 2->0
    jmp("same")  # 9: 2->1 invalid
    jmp("same")  # 10: 2->2
    jmp("down")  # 11: 2->3
    jmp("same")  # 12: 3->0 invalid
    jmp("down")  # 13: 3->1
    jmp("up")  # 14: 3->2
    jmp("same")  # 15: 3->3
    label("up")
    mov(x, invert(x))  # x + 1 as ~(~x - 1)
    jmp(x_dec, "up_done")
    label("up_done")
    mov(x, invert(x))
    jmp("count")
    label("down")
    jmp(x_dec, "count")  # decrements whether or not it jumps
    label("count")
    irq(0)  # the count changed: flag 0, SM0's (the encoder's), the board's count IRQ
    label("same")
    out(y, 2)  # y = the state just sampled (low bits of the code)
    mov(isr, x)
    push(noblock)  # the count for the board; dropped when the FIFO is full
    in_(y, 2)
    in_(pins, 2)
    mov(osr, isr)
    mov(pc, isr)
    nop()  # padding to 32 instructions: pins the table to address 0
    nop()
    nop()


@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def pulse():
    pull(block)
    mov(x, osr)
    set(pins, 1)
    label("hold")
    jmp(x_dec, "hold")  # N+1 passes
    set(pins, 0)
