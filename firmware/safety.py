"""Safety: trips and their latching, the footswitch rules, the guards of
READY and RESET, and the boot self-test (SR-2..SR-5, SR-10, SR-11, SR-13).

Methods of the Controller, defined here as functions of `self` and bound
in its class body (controller.py): a class per part would cost heap. They
read and change the Controller's attributes, made in its __init__; this
part keeps `fault`, `faults` and `foot_armed`.
"""
import codes
import hal
import interlocks as il
import state as st


def _foot_down(b):
    return b.inputs.read() & il.FOOT


def _lit(b):
    return b.laser.stray_light()


# The boot self-test, after the reset cause: (a check of the board, true when
# the cause is present; the fault it latches; the text), judged in order.
SELF_TEST = (
    (_foot_down, codes.F_SELFTEST, "footswitch pressed at boot"),
    (_lit, codes.F_STRAY_LIGHT, "light at boot"),
)


def self_test(self, cause):
    """Boot, once the session is read: the reset cause, then the rows of
    SELF_TEST in order; the first cause found latches and ends the test."""
    if not self.store_ok:
        self.trip(codes.F_STORE, "the store was written but no session slot is whole")
    if cause == hal.RESET_WATCHDOG:
        return self.trip(codes.F_WATCHDOG, "loop stalled")
    if cause == hal.RESET_EXCEPTION:
        return self.trip(codes.F_EXCEPTION, "restarted after an exception")
    if not self.store_ok:
        return
    for check, code, text in SELF_TEST:
        if check(self.b):
            return self.trip(code, text)
    self._go(st.TEST_PASS)


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


def check_safety(self):
    """Runs in FAULT too, so a later, graver fault is still reported.
    Causes found in the same loop all latch: the state they are judged
    in is the one the loop found, not the FAULT the first of them made."""
    bits = self.bits
    if self.state == st.BOOT:
        return
    armed = self.state in st.ARMED_STATES
    self.link_held = False
    if not bits & il.ESTOP:
        self.trip(codes.F_ESTOP, "pressed")
    if armed:
        ms = self.settings["sup_ms"]
        if ~bits & il.INTERLOCKS & ~il.ESTOP:  # the e-stop is F03's
            self.trip(codes.F_INTERLOCK, il.open_names(bits | il.ESTOP))
        if self.link_closed:
            self.trip(codes.F_LINK_LOST, "the host closed the link")
        elif ms and self.link_quiet_us >= ms * 1000:
            if self.link_grace_us > 0:  # the device was not listening (elapse): no pulse meanwhile
                self.link_held = True
                self.b.laser.disarm()
            else:
                self.trip(codes.F_LINK_LOST, "no frame for %d ms" % ms)
    if not self.link_held:
        self.link_grace_us = 0  # a grace lasts only while it holds a verdict back
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
