"""Emission: where a step starts and ends, arming one pulse at a time, and
the accounting of every pulse the board fired (SR-6, SR-8..SR-10, SR-14).

Methods of the Controller, defined here as functions of `self` and bound
in its class body (controller.py): a class per part would cost heap. This
part keeps the pacer, the step's end count, the trigger point under way, the
speed window and the pulse log the loop reports outside the pulse path. emit() and
on_pulse() are the pulse path: integer-only, allocation-free.
"""
from micropython import const

import codes
import state as st
from program import POINT
from report import mm

PULSE_LOG = const(32)  # pulses waiting to be reported; older ones are counted lost


def _phase(self):
    return self.program.phases[self.session.phase]


def _start_step(self):
    """Entering EMITTING: configure the phase and where this step ends.
    A trigger point paused by the footswitch or '!' resumes where it was
    anchored; otherwise a new point starts here with a full point's pulses
    (capped by what is left of the phase)."""
    ph = self._phase()
    done = self.session.done[self.session.phase]
    new_point = True
    if ph.mode != POINT:
        self.stop_at_pulses = ph.pulses_max
    elif self.point_open:
        new_point = False
    else:
        self.stop_at_pulses = min(done + ph.pulses_per_point, ph.pulses_max)
        self.point_open = True
        self.point_no += 1
    self.b.laser.configure(ph.width_us, ph.power_w)
    self.pacer.start(ph, self.b.encoder.count(), new_point)
    self.speed_flag = 0


def emit(self, now):
    b = self.b
    ph = self._phase()
    pacer = self.pacer
    turned = pacer.track(b.encoder.count())
    if pacer.point_moved():
        # SR-9: the hand left the point: it is abandoned, not finished elsewhere.
        b.laser.off()
        self.point_open = False
        n = self.stop_at_pulses - self.session.done[self.session.phase]  # undelivered
        self.rep.ev(now // 1000, "point-abort", self.session.phase, self.point_no - 1, pacer.point_offset(), n)
        self._go(st.PHASE_END)
        return
    if turned and b.laser.armed():
        b.laser.disarm()
    if self.session.need_reserve(ph.pulses_max):
        b.laser.disarm()
        self.session.reserve(ph.pulses_max)  # store write: never with a pulse armed
        return  # the write took time: the next loop's safety checks come before the next pulse
    if b.laser.armed():
        return
    i = self.session.phase
    if self.session.done[i] < self.stop_at_pulses and self.session.may_fire(ph.pulses_max):
        if pacer.plan(now):
            # A point pulse is time-only: the stillness check above runs
            # every loop and cancels it if the hand moves (SR-9).
            b.laser.arm(pacer.not_before_us, pacer.target_count, pacer.dir if ph.mode != POINT else 0)


def on_pulse(self, rec):
    """A pulse the board fired: dose, photodiode check, report queue.
    Allocation-free: it runs once per pulse."""
    i = self.session.phase
    self.session.done[i] += 1
    self.pacer.fired(rec[0], rec[1])
    if self.plog_n < PULSE_LOG:
        j = self.plog_n * 4
        self.plog[j] = rec[0] // 1000
        self.plog[j + 1] = rec[1]
        self.plog[j + 2] = rec[2]
        self.plog[j + 3] = i
        self.plog_n += 1
    else:
        self.plog_lost += 1
    nominal = self._phase().pulse_uj
    tol = nominal * self.cfg["energy_tol_pct"] // 100
    step = self.pd_step_uj
    # Readings are whole photodiode steps: light at the lower limit reads
    # the step below it, and is inside (SR-10: exactly -20 % is within).
    if rec[2] < (nominal - tol) // step * step or rec[2] > nominal + tol:
        self.trip(codes.F_PHOTODIODE, "pulse %d measured %d uJ, nominal %d uJ" % (
            self.session.done[i], rec[2], nominal))


def _step_end(self, now):
    """A step (phase or trigger point) reached its pulse count."""
    s = self.session
    i = s.phase
    ph = self._phase()
    if s.done[i] < self.stop_at_pulses:
        return
    if ph.mode == POINT:
        self.point_open = False
        self.rep.ev(now // 1000, "point-done", i, self.point_no - 1)
    if s.done[i] < ph.pulses_max:
        self._go(st.PHASE_END)
        return
    self.rep.ev(now // 1000, "phase-done", i, s.done[i], s.done[i] * ph.pulse_uj // 1000,
                ph.energy_mj - s.done[i] * ph.pulse_uj // 1000,
                mm(self.pacer.under_counts, self.cfg["counts_per_mm"]), self.pacer.skips)
    if i + 1 < len(self.program.phases):
        s.next_phase()
        self.pacer.new_phase()
        self.point_no = 0
        self._go(st.PHASE_END)
    else:
        s.close()
        self._go(st.SESSION_END)
        self.rep.ev(now // 1000, "session-done", self.delivered_mj())


def delivered_mj(self):
    s = self.session
    return sum(s.done[i] * ph.pulse_uj for i, ph in enumerate(self.program.phases)) // 1000


def _speed_window(self, t_ms):
    ph = self._phase()
    if ph.mode == POINT:
        return
    v = self.pacer.speed_mm_s
    flag = 1 if v > ph.speed_max_mm_s else (-1 if 0 < v < ph.speed_min_mm_s else 0)
    if flag != self.speed_flag:
        self.speed_flag = flag
        self.rep.ev(t_ms, ("speed-ok", "speed-high", "speed-low")[flag], v)
