# Error codes (replies to a refused frame) and fault codes (latched alarms).
# The numbers are the wire format: never renumber, only append.
# docs/codes.md lists the same table for host writers.
from micropython import const

# -- errors: the frame was refused and nothing changed (SR-12)
E_CHECKSUM = const(1)
E_SEQUENCE = const(2)
E_TOO_LONG = const(3)
E_SYNTAX = const(4)
E_UNKNOWN = const(5)
E_RANGE = const(6)
E_STATE = const(7)
E_STRICT = const(8)
E_HANDSHAKE = const(9)
E_VERSION = const(10)
E_PROGRAM = const(11)
E_INTERLOCK = const(12)
E_FAULTED = const(13)
E_SESSION = const(14)
E_ARGUMENT = const(15)

ERRORS = (
    "",
    "bad checksum",
    "bad sequence",
    "line too long",
    "syntax",
    "unknown command",
    "out of range",
    "not allowed in this state",
    "needs a framed line",
    "no handshake",
    "protocol version",
    "program",
    "interlock",
    "fault latched",
    "session",
    "bad arguments",
)

# -- faults: latched until RESET once the cause is gone (SR-4)
F_SELFTEST = const(1)
F_INTERLOCK = const(2)
F_ESTOP = const(3)
F_WATCHDOG = const(4)
F_EXCEPTION = const(5)
F_PHOTODIODE = const(6)
F_STRAY_LIGHT = const(7)
F_LINK_LOST = const(8)
F_STORE = const(9)

FAULTS = (
    "",
    "self-test failed",
    "interlock open",
    "emergency stop",
    "watchdog reset",
    "firmware exception",
    "pulse energy out of tolerance",
    "light without a commanded pulse",
    "host link lost",
    "store unreadable",
)

# Gravity of each fault (index = code, higher = graver). A later fault that
# is graver than the latched one replaces it as the device's `fault`; every
# fault is reported all the same. Uncommanded light is a hardware failure of
# the off path; then the operator's emergency stop, a firmware failure, a
# pulse dose off nominal, the dose record lost, an interlock, a silent host,
# and a footswitch held at boot.
GRAVITY = (0, 1, 3, 8, 6, 7, 5, 9, 2, 4)
