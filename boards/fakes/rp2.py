"""Fake `rp2` (tests only): a PIO assembler that records the program, a tiny
PIO interpreter to run it, and StateMachine objects with visible FIFOs.

The assembler runs the decorated function with only the PIO names as its
globals, as the real one does, so a program that leans on module globals
fails here too. The interpreter covers the instructions the boards use
(jmp, mov, in, out, push, pull, set, wait, nop, irq) at one cycle each, with
delays; it models FIFO depths of 4 (8 when joined) and the PIO's IRQ flags
(`irq(n)` sets flag n, `irq(rel(n))` flag n + the SM's number, mod 4).
Shift directions default to SHIFT_LEFT, as rp2.asm_pio's do.

StateMachine.irq() keeps its handler as the port does: a test raises the
SM's IRQ with raise_irq(). A hard handler runs at once under the heap lock;
a soft one (the port schedules it for the next bytecode boundary) runs at
once, without it. Either waits for enable_irq() while interrupts are masked,
as the port's C handler that acknowledges the flag cannot run before.
"""

import machine

_LOG = 256  # StateMachine.log and .execs keep this many entries
_TEST_HOOKS = {"": ("Program", "Sim"), "StateMachine": ("made", "raise_irq")}


class PIO:
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    OUT_LOW = 0
    OUT_HIGH = 1
    IN_LOW = 0
    IN_HIGH = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2


class Program:
    def __init__(self, kw):
        self.kw = kw
        self.code = []  # [op, args, delay]
        self.labels = {}

    def __len__(self):
        return len(self.code)


class _Instr:
    def __init__(self, entry):
        self._entry = entry

    def __getitem__(self, delay):
        self._entry[2] = delay
        return self

    def side(self, v):
        return self

    def delay(self, d):
        self._entry[2] = d
        return self


def _dsl(prog):
    def emit(op):
        def f(*args):
            entry = [op, args, 0]
            prog.code.append(entry)
            return _Instr(entry)

        return f

    def label(name):
        prog.labels[name] = len(prog.code)

    names = {n: n for n in ("pins", "x", "y", "isr", "osr", "pc", "null", "pindirs", "block", "noblock",
                            "iffull", "ifempty", "x_dec", "y_dec", "not_x", "not_y", "x_not_y", "pin",
                            "not_osre", "gpio", "exec")}
    for op in ("jmp", "mov", "set", "pull", "push", "in_", "out", "nop", "wait", "irq"):
        names[op] = emit(op)
    names["label"] = label
    names["invert"] = lambda v: ("~", v)
    names["reverse"] = lambda v: ("rev", v)
    names["rel"] = lambda v: ("rel", v)
    names["wrap_target"] = lambda: None
    names["wrap"] = lambda: None
    return names


def asm_pio(*, out_init=None, set_init=None, sideset_init=None, side_pindir=False, in_shiftdir=0,
            out_shiftdir=0, autopush=False, autopull=False, push_thresh=32, pull_thresh=32,
            fifo_join=PIO.JOIN_NONE):
    kw = {"out_init": out_init, "set_init": set_init, "in_shiftdir": in_shiftdir,
          "out_shiftdir": out_shiftdir, "fifo_join": fifo_join}

    def dec(f):
        prog = Program(kw)
        g = f.__globals__
        saved = dict(g)
        g.clear()
        g.update(_dsl(prog))
        try:
            f()
        finally:
            g.clear()
            g.update(saved)
        return prog

    return dec


def asm_pio_encode(instr, sideset_count, sideset_opt=False):
    return 0xE000  # the encoding of set(pins, 0); the fake never decodes it


_M = 0xFFFFFFFF


class Sim:
    """Run a Program cycle by cycle. read_pins(n) -> int from in_base;
    write_pins(value, n) for out/set; jmp_pin() -> 0/1."""

    def __init__(self, prog, read_pins=None, write_pins=None, jmp_pin=None, fifo=4, sm=0):
        self.p = prog
        self.read_pins = read_pins
        self.write_pins = write_pins
        self.jmp_pin = jmp_pin
        self.in_left = prog.kw.get("in_shiftdir", PIO.SHIFT_LEFT) == PIO.SHIFT_LEFT
        self.out_left = prog.kw.get("out_shiftdir", PIO.SHIFT_LEFT) == PIO.SHIFT_LEFT
        self.x = self.y = self.isr = self.osr = self.pc = 0
        self.rx = []
        self.tx = []
        self.depth = fifo
        self.cycles = 0
        self.sm = sm  # the SM's number in its PIO, for irq(rel(n))
        self.irq_flags = 0  # the PIO's IRQ flags 0..7, set by irq(); a test clears them

    def _src(self, s):
        if isinstance(s, tuple):
            return ~self._src(s[1]) & _M
        if s == "pins":
            return self.read_pins(32)
        return {"x": self.x, "y": self.y, "isr": self.isr, "osr": self.osr, "null": 0}[s]

    def _dst(self, d, v, n=32):
        if d == "x":
            self.x = v
        elif d == "y":
            self.y = v
        elif d == "isr":
            self.isr = v
        elif d == "osr":
            self.osr = v
        elif d == "pc":
            self.pc = v
            return True
        elif d == "pins":
            self.write_pins(v, n)
        return False

    def exec(self, instr):
        """Run one instruction given as StateMachine.exec() takes it (a string
        such as "mov(x, osr)"), as the SM does: at once, pc unchanged unless
        it jumps."""
        prog = Program({})
        eval(instr, _dsl(prog))
        op, a, _ = prog.code[0]
        nxt = self._do(op, a, self.pc)
        if nxt is not None:
            self.pc = nxt

    def step(self):
        """One instruction (or one stalled cycle)."""
        op, a, delay = self.p.code[self.pc]
        self.cycles += 1
        nxt = self._do(op, a, (self.pc + 1) % len(self.p.code))
        if nxt is None:
            return False
        self.cycles += delay
        self.pc = nxt
        return True

    def _do(self, op, a, nxt):
        """Execute one instruction; the next pc, or None when it stalls."""
        if op == "jmp":
            cond, target = (None, a[0]) if len(a) == 1 else a
            go = True
            if cond == "x_dec":
                go, self.x = self.x != 0, (self.x - 1) & _M
            elif cond == "y_dec":
                go, self.y = self.y != 0, (self.y - 1) & _M
            elif cond == "not_x":
                go = self.x == 0
            elif cond == "not_y":
                go = self.y == 0
            elif cond == "x_not_y":
                go = self.x != self.y
            elif cond == "pin":
                go = bool(self.jmp_pin())
            if go:
                nxt = self.p.labels[target] if isinstance(target, str) else target
        elif op == "mov":
            if self._dst(a[0], self._src(a[1])):
                nxt = self.pc
        elif op == "set":
            self._dst(a[0], a[1], 5)
        elif op == "in_":
            n = a[1]
            v = self._src(a[0]) & ((1 << n) - 1)
            if self.in_left:
                self.isr = (self.isr << n | v) & _M
            else:
                self.isr = (self.isr >> n | v << (32 - n)) & _M
        elif op == "out":
            n = a[1]
            if self.out_left:
                v, self.osr = self.osr >> (32 - n), (self.osr << n) & _M
            else:
                v, self.osr = self.osr & ((1 << n) - 1), self.osr >> n
            if self._dst(a[0], v, n):
                nxt = self.pc
        elif op == "push":
            if len(self.rx) < self.depth:
                self.rx.append(self.isr)
            elif "noblock" not in a:
                return None
            self.isr = 0
        elif op == "pull":
            if not self.tx:
                if "noblock" in a:
                    self.osr = self.x
                else:
                    return None
            else:
                self.osr = self.tx.pop(0)
        elif op == "irq":
            n = a[0]
            n = (n[1] + self.sm) % 4 if isinstance(n, tuple) else n
            self.irq_flags |= 1 << n
        elif op == "wait":
            level = self.jmp_pin() if a[1] == "pin" and self.read_pins is None else self.read_pins(32) >> a[2] & 1
            if level != a[0]:
                return None
        return nxt

    def run(self, cycles):
        end = self.cycles + cycles
        while self.cycles < end:
            self.step()


class StateMachine:
    """FIFOs and the exec'd instructions, visible to the tests. put() and
    exec() may run with interrupts masked or in a hard IRQ (the fake heap
    lock): their bookkeeping is the fake's, done with the lock released."""
    made = {}

    def __init__(self, id, program=None, *, freq=-1, in_base=None, out_base=None, set_base=None, jmp_pin=None,
                 sideset_base=None, in_shiftdir=None, out_shiftdir=None, push_thresh=None, pull_thresh=None):
        self.id = id
        self.rx = []
        self.tx = []
        self.execs = []
        self.latest = 0  # what get() returns once rx is empty: the next push
        self.log = []  # ("put", word), ("exec", instr) and ("init", None) in the order they came
        self.running = False
        self.inits = 0
        self.handler = None  # irq(): what raise_irq() runs, and how
        self.trigger = 1
        self.hard = False
        self.init(program, freq=freq, in_base=in_base, out_base=out_base, set_base=set_base, jmp_pin=jmp_pin)
        StateMachine.made[id] = self

    def init(self, program, *, freq=-1, in_base=None, out_base=None, set_base=None, jmp_pin=None,
             sideset_base=None, in_shiftdir=None, out_shiftdir=None, push_thresh=None, pull_thresh=None):
        """As on the chip: stops the SM, clears its FIFOs, loads the program."""
        self.prog = program
        self.kw = {"freq": freq, "in_base": in_base, "out_base": out_base, "set_base": set_base, "jmp_pin": jmp_pin}
        self.running = False
        self.tx[:] = []
        self.rx[:] = []
        self.inits += 1
        self.log.append(("init", None))

    def put(self, value, shift=0):
        n = machine._release()
        try:
            self.tx.append(value)
            self.log.append(("put", value))
        finally:
            machine._relock(n)

    def get(self, buf=None, shift=0):
        if buf is not None:  # as on the chip: fills buf, word by word
            for k in range(len(buf)):
                buf[k] = self.get()
            return None
        return self.rx.pop(0) if self.rx else self.latest

    def rx_fifo(self):
        return len(self.rx)

    def tx_fifo(self):
        return len(self.tx)

    def active(self, value=None):
        if value is None:
            return self.running
        self.running = bool(value)

    def exec(self, instr):
        n = machine._release()
        try:
            self.execs.append(instr)
            self.log.append(("exec", instr))
            if len(self.log) > _LOG:  # a long test (thousands of off()) keeps the recent past
                del self.log[0]
                del self.execs[0]
        finally:
            machine._relock(n)

    def irq(self, handler=None, trigger=1, hard=False):
        """As the port: handler(sm) runs when the SM sets its own IRQ flag
        (flag n for SM n of its PIO); None switches it off."""
        self.handler = handler
        self.trigger = trigger
        self.hard = hard

    def raise_irq(self):
        """The SM set its IRQ flag: run the handler as the port would."""
        if self.handler is not None and self.trigger & 1:
            machine._interrupt(self.handler, self, self.hard)
