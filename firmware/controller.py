"""The control loop: inputs -> safety -> pacing -> reports, then feed the watchdog.

One loop, no threads. Order inside an iteration matters:
1. real-time bytes (stop) act before anything queued;
2. pulses the board fired are accounted (dose, photodiode) before a re-arm;
3. safety (e-stop, interlocks, stray light, host link) before emission;
4. emission arms at most one pulse;
5. reports and store writes, which may block, come last (reports are queued
   and handed to the link without waiting: report.py);
6. the watchdog is fed only here, so a stalled loop starves it (SR-11).
"""
from array import array
from micropython import const

import codes
import commands
import hal
import interlocks as il
import state as st
import ticks
from limits import Limits, check_settings
from pacer import Pacer
from program import POINT, Program
from protocol import Intake
from report import STATUS, Reporter
from session import Session
from version import FW_VERSION, PROTO_VERSION

_RX = const(64)
_PULSE_LOG = const(32)  # pulses waiting to be reported; older ones are counted lost
_SPAN_CAP_US = const(0x10000000)  # spans stop growing here: they stay small ints


class Controller:
    def __init__(self, board):
        board.laser.off()  # SR-1: before anything else
        board.indicator.set(False)
        self.b = board
        self.lim = Limits(board.limits)
        cfg = board.settings
        check_settings(cfg)
        self.cfg = cfg
        self.pd_step_uj = board.laser.pd_step_uj
        self.rep = Reporter(board.link)
        self.intake = Intake(lambda seq, words: commands.dispatch(self, seq, words), self.rep.err)
        self.inputs = il.Inputs(board, cfg["debounce_ms"])
        self.program = Program()
        self.session = Session(board.store)
        self.pacer = Pacer(self.lim, cfg["counts_per_mm"], cfg["deadband_counts"])
        self.state = st.BOOT
        self.fault = 0  # the gravest latched fault (codes.GRAVITY), 0 if none
        self.faults = 0  # every latched fault, a bit per code
        self.seq = -1  # no handshake yet
        self.seq_words = None  # the words of the frame that took self.seq (a repeat must match)
        self.settings = {"status_ms": 0, "sup_ms": 0}
        self.bits = 0
        self.foot_armed = False
        self.link_closed = False  # the host closed its end of the link (end of input)
        # Spans are added up loop by loop (dt), never read off two distant ticks.
        self.prev_us = 0  # ticks at the previous loop
        self.ready_left_us = 0  # ready delay still to run (SR-5)
        self.link_quiet_us = 0  # time since the last framed line (SR-13)
        self.status_left_us = 0  # time to the next status line
        self.stop_at_pulses = 0  # pulse count (in this phase) at which this step ends
        self.point_open = False  # a trigger point is under way (resumes at its anchor)
        self.point_no = 0  # trigger points started in this phase (reports)
        self.store_ok = True  # False after F09 until NEWSESSION
        self.speed_flag = 0  # -1 slow, 0 in window, 1 fast
        self.rx = bytearray(_RX)
        self.rec = array("i", (0, 0, 0))
        self.plog = array("i", bytes(4 * 4 * _PULSE_LOG))  # t_ms, pos, uj, phase
        self.plog_n = 0
        self.plog_lost = 0

    # -- life cycle

    def boot(self):
        b = self.b
        now = b.ticks_us()
        cause = b.reset_cause()
        self.rep.ev(now // 1000, "boot", FW_VERSION, PROTO_VERSION, b.name,
                    ("power", "watchdog", "soft", "exception")[cause])
        self._go(st.BOOTED)
        self.b.wdt.start(self.cfg["wdt_timeout_ms"])
        self.prev_us = now
        # The delivered dose is read first, whatever the reset cause: a fault
        # latched below must not leave the session at its unknown default (SR-14).
        self.store_ok = self.session.load()
        if not self.store_ok:
            self.trip(codes.F_STORE, "the store was written but no session slot is whole")
        if cause == hal.RESET_WATCHDOG:
            return self.trip(codes.F_WATCHDOG, "loop stalled")
        if cause == hal.RESET_EXCEPTION:
            return self.trip(codes.F_EXCEPTION, "restarted after an exception")
        if not self.store_ok:
            return
        raw = b.inputs.read()
        if raw & il.FOOT:
            return self.trip(codes.F_SELFTEST, "footswitch pressed at boot")
        if b.laser.stray_light():
            return self.trip(codes.F_STRAY_LIGHT, "light at boot")
        self._go(st.TEST_PASS)

    def run(self):
        self.boot()
        while True:
            self.step()

    def step(self):
        b = self.b
        now = b.ticks_us()
        dt = ticks.diff(now, self.prev_us)
        dt = dt if dt > 0 else 0
        self.prev_us = now
        self.elapse(dt)
        n = b.link.readinto(self.rx)
        self.link_closed = n < 0
        if n > 0:
            intake = self.intake
            if intake.realtime(self.rx, n):
                for _ in range(intake.stops):
                    self.stop_emission()
                for _ in range(intake.statuses):  # each '?' gets its own status line
                    self.rep.status(self.status_text(now))
            intake.lines(self.rx, n)
        while b.laser.take_pulse(self.rec):
            self.on_pulse(self.rec)
        self.bits = self.inputs.update(dt)
        self.check_safety()
        self.check_foot()
        if self.state == st.EMITTING:
            self.emit(now)
        self.housekeeping(now)
        b.wdt.feed()
        b.wait(ticks.add(now, self._wait_us()))

    def _wait_us(self):
        """Time to the next loop: the control period, or less where a limit
        falls sooner (host supervision, SR-13; the end of the ready delay), so
        the loop acts at the limit, not up to a period after it."""
        us = self.cfg["control_period_us"]
        ms = self.settings["sup_ms"]
        if ms and self.state in st.ARMED_STATES:
            us = min(us, ms * 1000 - self.link_quiet_us)
        if self.ready_left_us > 0:
            us = min(us, self.ready_left_us)
        return us if us > 0 else 0

    def elapse(self, dt):
        """Run every span the loop keeps by the time since the last loop."""
        self.pacer.elapse(dt)
        if self.ready_left_us > 0:
            self.ready_left_us -= dt
        if self.link_quiet_us < _SPAN_CAP_US:
            self.link_quiet_us += dt
        if self.settings["status_ms"]:
            self.status_left_us -= dt

    # -- transitions

    def _go(self, event):
        """Apply a transition from the table; returns False if there is no row."""
        to = st.next_state(self.state, event)
        if to < 0:
            return False
        was = self.state
        self.state = to
        if to == st.EMITTING:
            self._start_step()
            self.b.laser.enable(True)
        elif was == st.EMITTING:
            self.b.laser.off()
        armed = to in st.ARMED_STATES
        self.b.indicator.set(armed)
        if to == st.READY:
            self.ready_left_us = self.cfg["ready_delay_ms"] * 1000
            self.link_quiet_us = 0
        if to != st.EMITTING:
            self.foot_armed = False
        if to != st.EMITTING and to != st.PAUSED:
            self.point_open = False  # after a fault or standby a point starts afresh
        self.rep.ev(self.b.ticks_us() // 1000, "state", st.NAMES[was], st.NAMES[to])
        return True

    def trip(self, code, text):
        """Latch a fault. The laser goes off first, the report comes second.
        Every cause is latched and reported once, in FAULT too; `fault` names
        the gravest (codes.GRAVITY). RESET clears them all at once."""
        self.b.laser.off()
        bit = 1 << code
        if self.faults & bit:
            return
        self.faults |= bit
        if codes.GRAVITY[code] > codes.GRAVITY[self.fault]:
            self.fault = code
        self._go(st.TRIP)  # no row from FAULT: already there
        self.rep.ev(self.b.ticks_us() // 1000, "fault", code, codes.FAULTS[code], text)

    def stop_emission(self):
        """Real-time '!': emission stops now. In any state the footswitch must
        then be lifted and pressed again before a pulse can fire. The event
        names the state the '!' arrived in (the transition has its own)."""
        self.foot_armed = False
        was = self.state
        if was == st.EMITTING:
            self.b.laser.off()
            self._go(st.STOP)
        self.rep.ev(self.b.ticks_us() // 1000, "stop", st.NAMES[was])

    # -- what the commands may do (commands.py): each returns None when done,
    # or (error code, text) having changed nothing

    def take_frame(self, seq, words):
        """A framed line took sequence number `seq`: it also feeds host supervision (SR-13)."""
        self.seq = seq
        self.seq_words = words
        self.link_quiet_us = 0

    def set(self, name, v):
        """A host setting, already range-checked. Supervision is not changed
        while armed (SR-13)."""
        if name == "sup_ms" and self.state in st.ARMED_STATES:
            return codes.E_STATE, "sup_ms only outside READY/EMITTING/PAUSED"
        self.settings[name] = v
        self.status_left_us = 0
        return None

    def load_program(self, resumed):
        """PEND: the program just closed; resume its open session or begin one (SR-14)."""
        s = self.session
        if not resumed and not s.begin(self.program):
            self.program.valid = False
            if not s.loaded:
                return codes.E_SESSION, "store unreadable, the count is unknown: NEWSESSION ends it"
            if s.closed:
                return codes.E_SESSION, "the session of program %08X is complete: NEWSESSION starts another" % (
                    s.program_crc)
            return codes.E_SESSION, "a session of program %08X is open: NEWSESSION ends it" % s.program_crc
        self.pacer.new_phase()
        self.point_no = 0
        return None

    def new_session(self):
        """NEWSESSION: the operator ends the session, whatever the store held;
        it belongs to no program then, so the same one may begin again."""
        self.session.release()
        self.store_ok = True
        self.program.clear()

    def arm(self):
        """READY: STANDBY -> READY only with everything in place (SR-2)."""
        bits = self.bits
        if self.state == st.FAULT:
            return codes.E_FAULTED, codes.FAULTS[self.fault]
        if self.state != st.STANDBY:
            return codes.E_STATE, st.NAMES[self.state]
        if not bits & il.KEY:
            return codes.E_INTERLOCK, "key off"
        if ~bits & il.INTERLOCKS:
            return codes.E_INTERLOCK, il.open_names(bits) + " open"
        if not self.program.valid:
            return codes.E_PROGRAM, "no program"
        if self.session.closed:
            return codes.E_SESSION, "session complete"
        self._go(st.ARM)
        return None

    def disarm(self):
        """STANDBY from READY, PAUSED or DONE; False if the state has no such row."""
        return self._go(st.DISARM)

    def reset_fault(self):
        """RESET: FAULT -> STANDBY once every cause is gone (SR-4)."""
        bits = self.bits
        if self.state != st.FAULT:
            return codes.E_STATE, "no fault latched"
        if not self.store_ok:
            return codes.E_SESSION, "store unreadable: NEWSESSION first (the count is lost)"
        if ~bits & il.INTERLOCKS:
            return codes.E_INTERLOCK, il.open_names(bits) + " still open"
        if self.b.laser.stray_light():
            return codes.E_FAULTED, "photodiode still lit"
        if self.faults & (1 << codes.F_SELFTEST) and bits & il.FOOT:
            return codes.E_FAULTED, "footswitch still pressed"
        self.fault = 0
        self.faults = 0
        self._go(st.RESET)
        return None

    # -- safety

    def check_safety(self):
        """Runs in FAULT too, so a later, graver fault is still reported.
        Causes found in the same loop all latch: the state they are judged
        in is the one the loop found, not the FAULT the first of them made."""
        bits = self.bits
        if self.state == st.BOOT:
            return
        armed = self.state in st.ARMED_STATES
        if not bits & il.ESTOP:
            self.trip(codes.F_ESTOP, "pressed")
        if armed:
            ms = self.settings["sup_ms"]
            if ~bits & il.INTERLOCKS & ~il.ESTOP:  # the e-stop is F03's
                self.trip(codes.F_INTERLOCK, il.open_names(bits | il.ESTOP))
            if self.link_closed:
                self.trip(codes.F_LINK_LOST, "the host closed the link")
            elif ms and self.link_quiet_us >= ms * 1000:
                self.trip(codes.F_LINK_LOST, "no frame for %d ms" % ms)
        if self.b.laser.stray_light():
            self.trip(codes.F_STRAY_LIGHT, "photodiode lit with no pulse commanded")

    def check_foot(self):
        """A pulse needs a press that starts after the footswitch was seen up
        in PAUSED, or in READY once the ready delay has passed (SR-4, SR-5):
        a footswitch held into READY, through the delay or through a fault
        reset does not fire. "Up" is the contact as read, not the debounced
        state, so a press already under way cannot arm it."""
        s = self.state
        if not self.bits & il.FOOT:
            if s == st.EMITTING:
                self._go(st.FOOT_UP)
            elif s == st.PAUSED or (s == st.READY and self.ready_left_us <= 0):
                if not self.inputs.raw & il.FOOT:
                    self.foot_armed = True
            return
        if self.foot_armed and (s == st.READY or s == st.PAUSED):
            self._go(st.FOOT_DOWN)

    # -- emission

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
        if ph.mode == POINT and pacer.point_moved():
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
        if self.plog_n < _PULSE_LOG:
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
                    ph.energy_mj - s.done[i] * ph.pulse_uj // 1000, self._mm(self.pacer.under_counts), self.pacer.skips)
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

    def _mm(self, n):
        """`n` encoder counts as a "mm.uuu" text."""
        um = n * 1000 // self.cfg["counts_per_mm"]
        return "%d.%03d" % (um // 1000, um % 1000)

    # -- housekeeping: reports and events, outside the pulse path

    def housekeeping(self, now):
        t_ms = now // 1000
        for i in range(self.plog_n):
            j = i * 4
            self.rep.ev(self.plog[j], "pulse", self.plog[j + 3], self.plog[j + 1], self.plog[j + 2])
        self.plog_n = 0
        if self.plog_lost:
            self.rep.ev(t_ms, "pulse-lost", self.plog_lost)
            self.plog_lost = 0
        if self.state == st.EMITTING:
            self._step_end(now)
            self._speed_window(t_ms)
        ms = self.settings["status_ms"]
        if ms and self.status_left_us <= 0:
            # The next line is due a period after this one was due, not after
            # it went out: the stream keeps its rate (a loop late by a few
            # hundred us does not make every line late); a stream that fell a
            # whole period behind starts again from now.
            self.status_left_us += ms * 1000
            if self.status_left_us <= 0:
                self.status_left_us = ms * 1000
            self.rep.status(self.status_text(now))
        self.rep.flush(t_ms)  # never waits: a host that does not read cannot stall the loop (SR-11)

    def _speed_window(self, t_ms):
        ph = self._phase()
        if ph.mode == POINT:
            return
        v = self.pacer.speed_mm_s
        flag = 1 if v > ph.speed_max_mm_s else (-1 if 0 < v < ph.speed_min_mm_s else 0)
        if flag != self.speed_flag:
            self.speed_flag = flag
            self.rep.ev(t_ms, ("speed-ok", "speed-high", "speed-low")[flag], v)

    def status_text(self, now):
        s = self.session
        return STATUS % (
            now // 1000, st.NAMES[self.state], il.open_names(self.bits) or "-",
            1 if self.bits & il.FOOT else 0, self.fault, s.phase,
            s.done[s.phase] if self.program.valid else 0,
            self.delivered_mj() if self.program.valid else 0,
            self._mm(self.pacer.under_counts), self.pacer.speed_mm_s)
