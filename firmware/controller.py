"""The control loop: inputs -> safety -> pacing -> reports, then feed the watchdog.

One loop, no threads. Order inside an iteration matters:
1. real-time bytes (stop) act before anything queued; the loop also listens
   between its sections (listen()), where a stop acts at once, so it waits
   at most a section, not the rest of the step; the other bytes read there
   wait, in order, for the next iteration's line intake;
2. pulses the board fired are accounted (dose, photodiode) before a re-arm;
3. safety (e-stop, interlocks, stray light, host link) before emission;
4. emission arms at most one pulse;
5. reports and store writes, which may block, come last (reports are queued
   and handed to the link without waiting: report.py);
6. the watchdog is fed only here, so a stalled loop starves it (SR-11).

A file per responsibility: this one holds the loop, the spans it keeps, the
state transitions and the host's settings; safety.py the trips, latching,
footswitch rules and boot self-test; emission.py arming, pulse accounting and
step ends. Their functions are bound as Controller methods (the table at the
top of the class): one object, so the loop and the pulse path reach every
attribute directly, and commands.py still calls Controller methods: arm,
disarm, reset_fault, load_program, set.
"""
from array import array
from micropython import const

import codes
import commands
import interlocks as il
import state as st
import ticks
import emission
import safety
from emission import PULSE_LOG
from limits import Limits, check_settings
from pacer import Pacer
from program import Program
from protocol import Intake
from report import STATUS, Reporter, mm
from session import Session
from version import FW_VERSION, PROTO_VERSION

_RX = const(64)
_SPAN_CAP_US = const(0x10000000)  # spans stop growing here: they stay small ints
_LATE_PERIODS = const(2)  # a loop longer than this many control periods was blocked in its own work (SR-13)


class Controller:
    # safety.py
    self_test = safety.self_test
    trip = safety.trip
    stop_emission = safety.stop_emission
    arm = safety.arm
    reset_fault = safety.reset_fault
    check_safety = safety.check_safety
    check_foot = safety.check_foot
    # emission.py
    _phase = emission._phase
    _start_step = emission._start_step
    emit = emission.emit
    on_pulse = emission.on_pulse
    _step_end = emission._step_end
    delivered_mj = emission.delivered_mj
    _speed_window = emission._speed_window

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
        self.link_grace_us = 0  # > 0: the F08 verdict waits for frames a blocked loop could not read (SR-13)
        self.link_held = False  # this loop holds emission while it waits so (SR-13)
        self.status_left_us = 0  # time to the next status line
        self.stop_at_pulses = 0  # pulse count (in this phase) at which this step ends
        self.point_open = False  # a trigger point is under way (resumes at its anchor)
        self.point_no = 0  # trigger points started in this phase (reports)
        self.store_ok = True  # False after F09 until NEWSESSION
        self.speed_flag = 0  # -1 slow, 0 in window, 1 fast
        self.rx = bytearray(_RX)  # bytes read, not yet through the line intake
        self.rxv = memoryview(self.rx)
        self.rx_n = 0
        self.rec = array("i", (0, 0, 0))
        self.plog = array("i", bytes(4 * 4 * PULSE_LOG))  # t_ms, pos, uj, phase
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
        self.self_test(cause)
    def run(self):
        self.boot()
        while True:
            self.step()

    def step(self):
        b = self.b
        now = b.ticks_us()
        self.link_closed = False
        self.listen(now)
        dt = ticks.diff(now, self.prev_us)
        dt = dt if dt > 0 else 0
        self.prev_us = now
        self.elapse(dt)
        if self.rx_n:  # after elapse(): a frame restarts the supervision span (take_frame)
            self.intake.lines(self.rx, self.rx_n)
            self.rx_n = 0
        while b.laser.take_pulse(self.rec):
            self.on_pulse(self.rec)
        self.listen(now)
        self.bits = self.inputs.update(dt)
        self.check_safety()
        self.check_foot()
        self.listen(now)  # before emit(): a stop here leaves EMITTING, so nothing is armed (SR-2)
        if self.state == st.EMITTING and not self.link_held:
            self.emit(now)
        self.listen(now)
        self.housekeeping(now)
        b.wdt.feed()
        if not self.rx_n:  # bytes listen() read wait for the intake: the loop does not idle over them
            b.wait(ticks.add(now, self._wait_us()))

    def listen(self, now):
        """Read what the link holds, behind what is read already: its
        real-time bytes act now, the rest waits in rx for the line intake.
        Called between the loop's sections. A stop here is as safe as at
        the top: it drops the enable (cancelling an armed pulse) and leaves
        EMITTING, so no later section of the step arms or accounts a step."""
        have = self.rx_n
        if have >= _RX:
            return  # the next iteration's intake makes room
        n = self.b.link.readinto(self.rxv[have:] if have else self.rx)
        if n <= 0:
            if n < 0:
                self.link_closed = True
            return
        self.rx_n = have + n
        intake = self.intake
        if intake.realtime(self.rx, have + n, have):
            for _ in range(intake.stops):
                self.stop_emission()
            for _ in range(intake.statuses):  # each '?' gets its own status line
                self.rep.status(self.status_text(now))

    def _wait_us(self):
        """Time to the next loop: the control period, or less where a limit
        falls sooner (host supervision, SR-13; the end of the ready delay), so
        the loop acts at the limit, not up to a period after it."""
        us = self.cfg["control_period_us"]
        ms = self.settings["sup_ms"]
        if ms and self.state in st.ARMED_STATES:
            us = min(us, ms * 1000 - self.link_quiet_us)
            if self.link_held:
                us = min(self.cfg["control_period_us"], self.link_grace_us)  # the limit passed: listen on
        if self.ready_left_us > 0:
            us = min(us, self.ready_left_us)
        return us if us > 0 else 0

    def elapse(self, dt):
        """Run every span the loop keeps by the time since the last loop."""
        self.pacer.elapse(dt)
        if self.ready_left_us > 0:
            self.ready_left_us -= dt
        if self.link_grace_us > 0:
            self.link_grace_us -= dt
        limit_us = self.settings["sup_ms"] * 1000
        late = dt > _LATE_PERIODS * self.cfg["control_period_us"]
        if late and self.link_quiet_us < limit_us <= self.link_quiet_us + dt:
            # The supervision limit passed while the loop itself was blocked (a
            # store write masks the USB interrupt): frames the host sent in
            # time may not have come in yet. The host gets that time back:
            # the verdict waits as long again, listening (check_safety).
            self.link_grace_us = dt
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

    # -- what the commands may do (commands.py): each returns None when done,
    # or (error code, text) having changed nothing; arm and reset_fault are in safety.py

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

    def disarm(self):
        """STANDBY from READY, PAUSED or DONE; False if the state has no such row."""
        return self._go(st.DISARM)

    # -- housekeeping: reports and events, outside the pulse path

    def housekeeping(self, now):
        t_ms = now // 1000
        plog = self.plog
        for i in range(self.plog_n):
            j = i * 4
            self.rep.pulse(plog[j], plog[j + 3], plog[j + 1], plog[j + 2])
        self.plog_n = 0
        if self.plog_lost:
            self.rep.ev(t_ms, "pulse-lost", self.plog_lost)
            self.plog_lost = 0
        self.listen(now)  # a stop here: no step end is judged this loop (not EMITTING)
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

    def status_text(self, now):
        s = self.session
        return STATUS % (
            now // 1000, st.NAMES[self.state], il.open_names(self.bits) or "-",
            1 if self.bits & il.FOOT else 0, self.fault, s.phase,
            s.done[s.phase] if self.program.valid else 0,
            self.delivered_mj() if self.program.valid else 0,
            mm(self.pacer.under_counts, self.cfg["counts_per_mm"]), self.pacer.speed_mm_s)
