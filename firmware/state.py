"""The device state machine: one table of allowed transitions (docs/states.md).

Only the transitions listed here happen. A request that has no row is refused
with E_STATE; a row's guard (safety.py, controller.py) may refuse it with a reason.
"""
from micropython import const

BOOT = const(0)
SELFTEST = const(1)
STANDBY = const(2)
READY = const(3)
EMITTING = const(4)
PAUSED = const(5)
DONE = const(6)
FAULT = const(7)
NAMES = ("BOOT", "SELFTEST", "STANDBY", "READY", "EMITTING", "PAUSED", "DONE", "FAULT")

# events
BOOTED = const(0)
TEST_PASS = const(1)
ARM = const(2)  # READY command
DISARM = const(3)  # STANDBY command
FOOT_DOWN = const(4)
FOOT_UP = const(5)
STOP = const(6)  # real-time '!'
PHASE_END = const(7)  # phase target, trigger point done or aborted
SESSION_END = const(8)
TRIP = const(9)  # any fault: interlock, watchdog, photodiode, link, exception
RESET = const(10)  # RESET command, all causes gone
N_EVENTS = const(11)  # the events above are 0..N_EVENTS-1 (docs/states.md names them)

# (from, event) -> to
TABLE = {
    (BOOT, BOOTED): SELFTEST,
    (SELFTEST, TEST_PASS): STANDBY,
    (STANDBY, ARM): READY,
    (READY, DISARM): STANDBY,
    (READY, FOOT_DOWN): EMITTING,
    (EMITTING, FOOT_UP): PAUSED,
    (EMITTING, STOP): PAUSED,
    (EMITTING, PHASE_END): PAUSED,
    (EMITTING, SESSION_END): DONE,
    (PAUSED, FOOT_DOWN): EMITTING,
    (PAUSED, DISARM): STANDBY,
    (DONE, DISARM): STANDBY,
    (FAULT, RESET): STANDBY,
}
for s in (BOOT, SELFTEST, STANDBY, READY, EMITTING, PAUSED, DONE):
    TABLE[(s, TRIP)] = FAULT
del s

# States in which the emission indicator is lit (SR-5): the laser may fire soon.
ARMED_STATES = (READY, EMITTING, PAUSED)


def next_state(state, event):
    """The state `event` leads to from `state`, or -1 if the table has no row."""
    return TABLE.get((state, event), -1)
