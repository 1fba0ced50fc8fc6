"""Bench rig on a second Pico: the real-world twin of the simulated board's rig.

It is not a HAL board: make() returns the Rig, and main.py runs it. It drives
the device's encoder and input lines and watches its laser outputs, and speaks
the line protocol of the simulated rig (boards/unix/board.py, docs/rig.md) on
its USB serial, so the same host code can drive a bench:
  in <name> 0|1   drive an interlock/footswitch line      = <t_us>
  kf <t_us> <pos> add a hand keyframe (rig time)           = <keyframes>
  hold [pos]      stop the hand (at pos)                   = <pos>
  pos / now       hand position / rig time                 = <n>
  info            = clock=real counts_per_mm=<n> t=<t_us>
  power           cut the device's supply for POWER_OFF_MS = ok
                  (every rig output low meanwhile: no back-powering)
Virtual-clock and fault-injection commands (adv, stall, crash, tear, pd, link)
answer `? ...`: a bench runs in real time and cannot reach inside the device.
Notifications: `p <t> <pos> 0 <width_us> 0` per fired pulse (the rig sees the
fire line, not the light or the power setpoint, so those fields are 0),
`o <t> en=0|1` and `o <t> ind=0|1` on output changes, `r <t> ...` for resets
the rig causes.

Timing and how it knows:
- Encoder out: runs of steps at a constant period, three PIO words a run
  (rigpio.py), computed from the keyframes up to _HORIZON_US ahead; positions
  follow the same integer interpolation as the simulated board
  (shared/keyframes.py). A run's first edge comes at the path's step time,
  the others within 1.5 us of it (their period is the path's speed rounded
  to a PIO cycle, the path's step times are whole us, and a run ends before
  its drift passes _DRIFT_CYCLES). A run (its first delay included) lasts
  at most about _HORIZON_US, so the queue rides out a loop stall that long
  and `hold` acts within about that long; a hand still for longer is shown
  in runs of _MAX_HOLD_US (a still run costs the loop as much as a moving
  one, so long ones: the FIFO then reaches as far ahead as in a motion). A
  pass queues at most _RUNS_PER_PASS runs, so commands and reports are not
  held back by a PIO that empties the FIFO as fast as the loop fills it
  (with 2 ms still runs, and a FIFO the emulated chip held at 4 words, a
  pass took 47 ms and every command waited that long). An
  edge is late only if the FIFO ran dry while the hand moved (reported as
  `o <t> underrun=1`; a FIFO that runs dry while the hand stands still
  leaves A/B where they belong).
- Fire time: hard IRQ on the rising fire edge stores ticks_us (latency: the
  MicroPython hard-IRQ entry, a few us; not measured here). Width: PIO, 1 us.
  The IRQ comes at the start of the pulse and the width at its end, so a
  fire event is held back until the width meter has pushed its value (at
  most _WIDTH_WAIT_US; then it is reported with width 0), keeping each width
  with its own pulse. Events after it wait too, so the order is kept.
- Power-up: every interlock and footswitch output starts low (open,
  released); the host closes them with `in <name> 1`.
- Enable/indicator: hard IRQs on both edges; the time is the IRQ's ticks_us.
- Rig time is ticks_us unwrapped into an ever-growing count of microseconds.
IRQ handlers store integers into preallocated arrays and never allocate; a
full ring drops the event and the main loop reports `o <t> lost=1`.
"""
import micropython
import time
from array import array
from machine import Pin
from micropython import const
import rp2

import pins
import rigpio
from keyframes import position
from stdiolink import StdioLink

_NAMES = ("key", "door", "estop", "handpiece", "temp", "flow", "foot")
_COUNTS_PER_MM = const(20)
_KEYFRAMES = const(1024)
_HORIZON_US = const(50_000)  # how far ahead the encoder schedule is filled (a loop stall it rides out)
_MAX_HOLD_US = const(25_000)  # longest still run: half the horizon, so `hold` acts as soon as in a motion
_RUNS_PER_PASS = const(3)  # a full FIFO (8 words) holds less: the cap binds only when the PIO keeps up
_JUMP_US = const(5)  # step period when the hand jumps (`hold <pos>`)
_DRIFT_CYCLES = const(4)  # most a run's edges drift from its rounded period (0.5 us)
_POWER_OFF_MS = const(500)
_RING = const(32)  # events between two main-loop passes
_WIDTH_WAIT_US = const(10_000)  # longest wait for a pulse's width (pulses are <= 150 us)
_LINE = const(128)


def _first_step(kt, kx, t0, p):
    """(t, direction, i): the first time after t0 at which the hand path
    leaves count p (it is at p at t0), +1/-1, and the keyframe segment i it
    falls in; (-1, 0, 0) if the hand stays there."""
    for i in range(1, len(kt)):
        a, b = kt[i - 1], kt[i]
        if b <= t0:
            continue
        xa, xb = kx[i - 1], kx[i]
        d = xb - xa
        if d > 0 and xb > p:
            t, s = a - (-(p + 1 - xa) * (b - a) // d), 1  # first t with pos >= p+1
        elif d < 0 and xb < p:
            t, s = a + (xa - p) * (b - a) // -d + 1, -1  # first t with pos <= p-1
        else:
            continue
        t = max(t, t0 + 1)
        if t <= b:
            return t, s, i
    return -1, 0, 0


def next_step(kt, kx, t0, p):
    """First time after t0 at which the hand path leaves count p, and the
    direction (+1/-1); (-1, 0) if it stays there."""
    t, s, _ = _first_step(kt, kx, t0, p)
    return t, s


def next_run(kt, kx, t0, p, changes_max):
    """The steps after t0 from count p on one constant-speed stretch of the
    path: (t_first, direction, n, period_cycles), the first at t_first (as
    next_step), the others period_cycles apart at the PIO clock, n as many as
    stay within _DRIFT_CYCLES of the path's real-valued step times (the
    rounded period drifts); (-1, 0, 0, 0) if the hand stays at p."""
    t, s, i = _first_step(kt, kx, t0, p)
    if not i:
        return -1, 0, 0, 0
    ad = abs(kx[i] - kx[i - 1])
    left = (kx[i] - p) * s  # counts still to go on this stretch
    span = (kt[i] - kt[i - 1]) * rigpio.CYCLES_PER_US  # cycles for ad counts
    period = (2 * span + ad) // (2 * ad)  # rounded
    err = abs(period * ad - span)  # drift per step, in 1/ad cycles
    n = changes_max if err == 0 else 1 + _DRIFT_CYCLES * ad // err
    period = max(period, rigpio.PERIOD_OVERHEAD_CYCLES)
    n = min(n, left, changes_max, 1 + _HORIZON_US * rigpio.CYCLES_PER_US // period)  # so `hold` acts soon
    return t, s, n, period


class Rig:
    def __init__(self):
        self._last = time.ticks_us()
        self._clock = 0
        # Open at power-up: the rig must not close the device's interlocks on
        # its own; the host closes each one it wants.
        self._outs = tuple(Pin(p, Pin.OUT, value=0) for p in pins.OUTPUTS)
        self._power = Pin(pins.POWER_RELAY, Pin.OUT, value=1)
        self.kt = [0]
        self.kx = [0]
        # Encoder schedule: the PIO shows _p from _t_out us + _frac cycles on.
        self._p = 0
        self._t_out = 0
        self._frac = 0
        self._quad = rp2.StateMachine(0, rigpio.quadrature_out, freq=rigpio.QUAD_HZ, out_base=Pin(pins.QUAD_A))
        # Fire edges and output changes from the IRQs: (ticks, code) rings.
        self._ev_t = array("i", bytes(4 * _RING))
        self._ev_c = array("i", bytes(4 * _RING))
        self._ev_in = 0
        self._ev_out = 0
        self._lost = False
        self._fire = Pin(pins.FIRE_IN, Pin.IN, Pin.PULL_DOWN)
        self._en = Pin(pins.EN_IN, Pin.IN, Pin.PULL_DOWN)
        self._ind = Pin(pins.IND_IN, Pin.IN, Pin.PULL_DOWN)
        self._width = rp2.StateMachine(4, rigpio.width_meter, freq=rigpio.WIDTH_HZ,
                                       in_base=self._fire, jmp_pin=self._fire)
        self._fire.irq(self._on_fire, Pin.IRQ_RISING, hard=True)
        self._en.irq(self._on_en, Pin.IRQ_RISING | Pin.IRQ_FALLING, hard=True)
        self._ind.irq(self._on_ind, Pin.IRQ_RISING | Pin.IRQ_FALLING, hard=True)
        self.link = StdioLink()
        self._line = bytearray(_LINE)
        self._n = 0

    # -- clock

    def now(self):
        t = time.ticks_us()
        self._clock += time.ticks_diff(t, self._last)
        self._last = t
        return self._clock

    def _rig_time(self, ticks):
        return self._clock + time.ticks_diff(ticks, self._last)

    # -- interrupt handlers: integers into the ring, nothing else

    def _event(self, code):
        i = self._ev_in
        if (i + 1) % _RING == self._ev_out:
            self._lost = True
            return
        # The stub types ticks as opaque; they are ints, read back only through ticks_diff.
        self._ev_t[i] = time.ticks_us()  # type: ignore[call-overload]
        self._ev_c[i] = code
        self._ev_in = (i + 1) % _RING

    def _on_fire(self, pin):
        self._event(0)

    def _on_en(self, pin):
        self._event(2 + pin.value())  # 2 = en=0, 3 = en=1

    def _on_ind(self, pin):
        self._event(4 + pin.value())

    # -- encoder schedule

    def start(self):
        self._quad.active(1)  # stalls on its empty FIFO showing A/B = 00 (count 0)
        self._width.active(1)
        self._t_out = self.now()
        self._frac = 0
        self._refill(False)

    def _refill(self, report=True):
        now = self.now()
        if self._t_out < now:  # the FIFO ran dry: the schedule slipped
            # A/B stood at _p through the gap: late only if the path moved in it
            # (a hand standing still loses nothing while the loop is away, nor
            # does a `hold` jump the encoder is still making: it is off the path
            # for its 5 us a count anyway). +2: a run may have shown _p up to
            # _DRIFT_CYCLES before the path reached it.
            at = position(self.kt, self.kx, self._t_out + 2)
            if report and 0 <= next_step(self.kt, self.kx, self._t_out + 2, at)[0] < now:
                self.notify("o %d underrun=1" % now)
            self._t_out = now
            self._frac = 0
        # Three words a run of steps (rigpio.py): Python works per run, not per count.
        runs = 0
        while runs < _RUNS_PER_PASS and self._quad.tx_fifo() <= 5 and self._t_out < now + _HORIZON_US:
            runs += 1
            start = self._t_out
            # A run may end up to _DRIFT_CYCLES before the path's step: look past that.
            want = position(self.kt, self.kx, start + 2)
            if want != self._p:  # off the path (a `hold` jump, a slip): step there at once
                s = 1 if want > self._p else -1
                t, n, period = start + 1, min(abs(want - self._p), rigpio.MAX_CHANGES), _JUMP_US * rigpio.CYCLES_PER_US
            else:
                t, s, n, period = next_run(self.kt, self.kx, start, self._p, rigpio.MAX_CHANGES)
                if not 0 <= t <= start + _HORIZON_US:  # still for long: show _p again at the end
                    t, s, n, period = start + _MAX_HOLD_US, 0, 1, rigpio.PERIOD_OVERHEAD_CYCLES
            # Cycles from the run's start (start us + _frac) to its first change.
            first = max((t - start) * rigpio.CYCLES_PER_US - self._frac, rigpio.FIRST_OVERHEAD_CYCLES)
            self._quad.put(rigpio.pattern(self._p, s))
            self._quad.put(first - rigpio.FIRST_OVERHEAD_CYCLES)
            self._quad.put(rigpio.period_word(period, n))
            end = self._frac + first + (n - 1) * period + rigpio.TAIL_CYCLES
            self._t_out += end // rigpio.CYCLES_PER_US
            self._frac = end % rigpio.CYCLES_PER_US
            self._p += s * n
        # Keyframes wholly in the past go, but not those an event still
        # waiting in the ring needs for its position (a fire event waits for
        # its width; the loop may also have been away, e.g. in `power`).
        keep = now
        if self._ev_out != self._ev_in:
            keep = min(keep, self._rig_time(self._ev_t[self._ev_out]))
        while len(self.kt) >= 2 and self.kt[1] <= keep:
            self.kt.pop(0)
            self.kx.pop(0)

    # -- reports

    def notify(self, text):
        self.link.write_all(text.encode() + b"\n")

    def _report(self):
        while self._ev_out != self._ev_in:
            j = self._ev_out
            t = self._rig_time(self._ev_t[j])
            code = self._ev_c[j]
            if code == 0:
                if self._width.rx_fifo():
                    width = self._width.get()
                elif self.now() - t < _WIDTH_WAIT_US:
                    break  # the pulse is still on: keep its event until its width is in
                else:
                    width = 0  # no width came (a glitch the meter missed)
                self._ev_out = (j + 1) % _RING
                self.notify("p %d %d 0 %d 0" % (t, position(self.kt, self.kx, t), width))
            else:
                self._ev_out = (j + 1) % _RING
                self.notify("o %d %s=%d" % (t, "en" if code < 4 else "ind", code & 1))
        if self._lost:
            self._lost = False
            self.notify("o %d lost=1" % self.now())

    # -- commands

    def command(self, w):
        cmd = w[0]
        if cmd == "now":
            return "= %d" % self.now()
        if cmd == "info":
            return "= clock=real counts_per_mm=%d t=%d" % (_COUNTS_PER_MM, self.now())
        if cmd == "in":
            i = _NAMES.index(w[1])
            self._outs[i].value(1 if w[2] == "1" else 0)
            return "= %d" % self.now()
        if cmd == "kf":
            t, x = int(w[1]), int(w[2])
            if t <= self.kt[-1]:
                return "? keyframe time must increase"
            if len(self.kt) >= _KEYFRAMES:
                return "? keyframe queue full (%d)" % _KEYFRAMES
            self.kt.append(t)
            self.kx.append(x)
            return "= %d" % len(self.kt)
        if cmd == "hold":
            now = self.now()
            x = int(w[1]) if len(w) > 1 else position(self.kt, self.kx, now)
            # The path up to now stays (events not yet reported need it; the
            # cut segment ends on a whole count at now-1, so within one
            # count); the hand stands at x from now on.
            before = position(self.kt, self.kx, now - 1)
            i = 0
            while i < len(self.kt) and self.kt[i] < now - 1:
                i += 1
            self.kt = self.kt[:i] + [now - 1, now]
            self.kx = self.kx[:i] + [before, x]
            return "= %d" % x
        if cmd == "pos":
            return "= %d" % position(self.kt, self.kx, self.now())
        if cmd == "power":
            self._power_cycle()
            self.notify("r %d power" % self.now())
            return "= ok"
        if cmd == "adv":
            return "? adv needs the virtual clock: a bench runs in real time"
        if cmd in ("stall", "crash", "tear", "pd", "link"):
            return "? %s is not available on the bench rig" % cmd
        return "? unknown rig command " + cmd

    def _power_cycle(self):
        """Cut the device's supply for _POWER_OFF_MS. Every line the rig
        drives goes low first: one left high would feed the unpowered device
        through its pins' protection diodes (back-powering it, so it may not
        even reset). The quadrature SM is re-initialised, which stops it,
        empties its FIFO and drives A/B low (out_init). With the supply back
        the lines return as the host left them and the encoder schedule
        starts again from the hand's position."""
        levels = [p.value() for p in self._outs]
        for p in self._outs:
            p.value(0)
        self._quad.init(rigpio.quadrature_out, freq=rigpio.QUAD_HZ, out_base=Pin(pins.QUAD_A))
        self._power.value(0)
        time.sleep_ms(_POWER_OFF_MS)
        self._power.value(1)
        for p, v in zip(self._outs, levels):
            p.value(v)
        self._quad.active(1)
        self._t_out = self.now()
        self._frac = 0
        self._refill(False)

    def _read_commands(self):
        buf = self._line
        while self._n < _LINE and self.link.readinto(memoryview(buf)[self._n:self._n + 1]):
            if buf[self._n] == 10:  # \n
                words = bytes(buf[: self._n]).decode().split()
                self._n = 0
                if words:
                    try:
                        self.notify(self.command(words))
                    except (ValueError, IndexError) as e:
                        self.notify("? %s" % e)
                return
            self._n += 1
        if self._n >= _LINE:
            self._n = 0
            self.notify("? line longer than %d bytes" % _LINE)

    def run(self):
        micropython.kbd_intr(-1)  # 0x03 is data on this line
        self.start()
        self.notify("r %d boot" % self.now())
        while True:
            self._read_commands()
            self._refill()
            self._report()


def make():
    return Rig()
