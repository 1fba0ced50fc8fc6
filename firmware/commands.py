"""The serial command set: one handler per command, and the dispatcher that
checks framing, handshake and sequence before any handler runs (SR-12).

Every handler either does its whole job and answers `ok`, or answers `er`
having changed nothing. Handlers run in the main loop, never in the pulse
path; they may allocate.
"""
import codes
import state as st
from program import parse_phase
from version import FW_VERSION, PROTO_VERSION

# settings a host may change (SET name=value): name -> (min, max); 0 = off
SETTABLE = {"status_ms": (50, 10000), "sup_ms": (50, 500)}


def dispatch(c, seq, words):
    """One line from the intake: `seq` is -1 for an unframed line; `c` is the
    controller whose state the commands read and change.

    A framed line whose sequence number is the expected one takes that number,
    whatever its command does (even an unknown command). Frame-level refusals
    (checksum, syntax, sequence, handshake, version) do not take it. The same
    number again is a retransmission only with the same words; another frame
    under a taken number is refused."""
    if not words:
        return  # a line of spaces: nothing to do
    name = words[0].upper()
    row = COMMANDS.get(name)
    if seq < 0:
        if row is None:
            return c.rep.err(-1, codes.E_UNKNOWN, name[:16])
        if row[1]:
            return c.rep.err(-1, codes.E_STRICT, name)
        return row[0](c, -1, words[1:])
    if name != "HELLO":
        if c.seq < 0:
            return c.rep.err(seq, codes.E_HANDSHAKE, "send HELLO first")
        if seq == c.seq:
            if words != c.seq_words:
                return c.rep.err(seq, codes.E_SEQUENCE, "N%d was taken by another frame; expected %d" % (
                    seq, (c.seq + 1) % 100000))
            return c.rep.resend()  # a repeat of the last frame: answer, do not redo
        if seq != (c.seq + 1) % 100000:
            return c.rep.err(seq, codes.E_SEQUENCE, "expected %d" % ((c.seq + 1) % 100000))
    elif words[1:] != [str(PROTO_VERSION)]:
        return c.rep.err(seq, codes.E_VERSION, "device speaks %d" % PROTO_VERSION)
    c.take_frame(seq, words)
    c.rep.keep = True  # the reply to an accepted frame is kept for a repeat
    if row is None:
        c.rep.err(seq, codes.E_UNKNOWN, name[:16])
    else:
        row[0](c, seq, words[1:])
    c.rep.keep = False


def HELLO(c, seq, args):
    c.rep.done(seq, "HELLO", FW_VERSION, PROTO_VERSION, c.b.name)

def STATUS(c, seq, args):
    c.rep.ok(seq, c.status_text(c.b.ticks_us()))

def LIMITS(c, seq, args):
    c.rep.items(seq, c.lim.items())

def GET(c, seq, args):
    cfg = c.cfg
    c.rep.done(seq, "GET", c.settings["status_ms"], c.settings["sup_ms"], cfg["ready_delay_ms"], cfg["counts_per_mm"])

def HELP(c, seq, args):
    c.rep.ok(seq, " ".join(sorted(COMMANDS)))

def PROG(c, seq, args):
    p = c.program
    c.rep.done(seq, "PROG", 1 if p.valid else 0, len(p.phases), p.crc, p.total_mj() if p.phases else 0)

def SET(c, seq, args):
    name, eq, val = args[0].partition("=") if len(args) == 1 else ("", "", "")
    if not name or not eq or not val:
        return c.rep.err(seq, codes.E_ARGUMENT, "SET name=value")
    if name not in SETTABLE:
        return c.rep.err(seq, codes.E_UNKNOWN, "setting " + name[:16])
    lo, hi = SETTABLE[name]
    if not val.isdigit():
        return c.rep.err(seq, codes.E_RANGE, "%s needs a whole number, 0 or %d..%d" % (name, lo, hi))
    v = int(val)
    if v and not lo <= v <= hi:
        return c.rep.err(seq, codes.E_RANGE, "%s 0 or %d..%d" % (name, lo, hi))
    why = c.set(name, v)
    if why:
        return c.rep.err(seq, why[0], why[1])
    c.rep.done(seq, "SET", name, v)

def _editable(c, seq):
    if c.state in st.ARMED_STATES:
        c.rep.err(seq, codes.E_STATE, st.NAMES[c.state])
        return False
    return True

def PCLR(c, seq, args):
    if _editable(c, seq):
        c.program.clear()
        c.rep.ok(seq)

def PADD(c, seq, args):
    if not _editable(c, seq):
        return
    ph, why = parse_phase(args, c.lim)
    if why is None:
        why = c.program.add(ph, " ".join(args))
    if why:
        return c.rep.err(seq, codes.E_PROGRAM, why)
    c.rep.done(seq, "PADD", len(c.program.phases) - 1, ph.pulses_max, ph.pulse_uj, ph.period_us)

def PEND(c, seq, args):
    if not _editable(c, seq):
        return
    if len(args) != 1 or not args[0].isdigit():
        return c.rep.err(seq, codes.E_ARGUMENT, "PEND <phase count>")
    why = c.program.close(int(args[0]), c.lim)
    if why:
        return c.rep.err(seq, codes.E_PROGRAM, why)
    s = c.session
    resumed = s.matches(c.program)
    why = c.load_program(resumed)
    if why:
        return c.rep.err(seq, why[0], why[1])
    c.rep.done(seq, "PEND", c.program.crc, c.program.total_mj(), 1 if resumed else 0, s.phase, c.delivered_mj())

def NEWSESSION(c, seq, args):
    if not _editable(c, seq):
        return
    c.new_session()
    c.rep.done(seq, "NEWSESSION")

def READY(c, seq, args):
    why = c.arm()
    if why:
        return c.rep.err(seq, why[0], why[1])
    c.rep.done(seq, "READY", c.cfg["ready_delay_ms"])

def STANDBY(c, seq, args):
    if not c.disarm():
        return c.rep.err(seq, codes.E_STATE, st.NAMES[c.state])
    c.rep.ok(seq)

def RESET(c, seq, args):
    why = c.reset_fault()
    if why:
        return c.rep.err(seq, why[0], why[1])
    c.rep.ok(seq)

def HB(c, seq, args):
    c.rep.ok(seq)


# name -> (handler, needs a framed line). A handler is named as its command:
# one interned name for both (a qstr costs heap on a port that compiles from source).
COMMANDS = {
"HELLO": (HELLO, True),
"VER": (HELLO, False),  # the same identity line, unframed allowed
"STATUS": (STATUS, False),
"LIMITS": (LIMITS, False),
"GET": (GET, False),
"HELP": (HELP, False),
"PROG": (PROG, False),
"SET": (SET, True),
"PCLR": (PCLR, True),
"PADD": (PADD, True),
"PEND": (PEND, True),
"NEWSESSION": (NEWSESSION, True),
"READY": (READY, True),
"STANDBY": (STANDBY, True),
"RESET": (RESET, True),
"HB": (HB, True),
}
