# The controller's per-pulse photodiode check (SR-10).
from controller import Controller
from fakes import FullBoard
from mp_test_program import LIM, POINT_PH, SCAN
from program import parse_phase

LIMITS = {k: getattr(LIM, k) for k, _ in LIM.items()}
F_PHOTODIODE = 6


def energy_check_faults(step_uj, reading_uj):
    """One pulse of the SCAN phase (120 us at 3000 W: 360,000 uJ nominal,
    +-20 %) measured as `reading_uj` by a photodiode read in `step_uj` steps:
    does the check latch F06?"""
    b = FullBoard(LIMITS)
    b.laser.pd_step_uj = step_uj
    c = Controller(b)
    ph, _ = parse_phase(SCAN.split(), LIM)
    c.program.add(ph, SCAN)
    assert c.program.close(1, LIM) is None
    assert c.session.load() and c.session.begin(c.program)
    c._start_step()
    c.on_pulse([b.t, 0, reading_uj])
    return bool(c.faults & (1 << F_PHOTODIODE))


def test_energy_check_takes_a_reading_in_whole_photodiode_steps():
    """Light exactly at -20 % (288,000 uJ) reads 2,618 steps of 110 uJ =
    287,980 uJ: inside (SR-10), one step less is not. +20 % reads 431,970."""
    assert not energy_check_faults(110, 287_980)
    assert energy_check_faults(110, 287_870)
    assert not energy_check_faults(110, 431_970)
    assert energy_check_faults(110, 432_080)
    assert not energy_check_faults(1, 288_000)  # an exact photodiode: the limits themselves
    assert energy_check_faults(1, 287_999)
    assert not energy_check_faults(1, 432_000)
    assert energy_check_faults(1, 432_001)


class ScriptedLink:
    """A link whose readinto() hands out `chunks` one per call (b"" reads nothing)."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.out = []
        self.reads = 0

    def readinto(self, buf):
        self.reads += 1
        data = self.chunks.pop(0) if self.chunks else b""
        for i in range(len(data)):
            buf[i] = data[i]
        return len(data)

    def write(self, data):
        self.out.append(bytes(data))
        return len(data)

    def lines(self):
        return b"".join(self.out).decode().split("\n")


def emitting(chunks, phase=SCAN):
    """A Controller EMITTING `phase`, foot down, its link reading `chunks`."""
    import state as st
    b = FullBoard(LIMITS)
    b.inputs.bits = 0x7F  # interlocks closed, key on, foot down
    b.link = ScriptedLink(chunks)
    c = Controller(b)
    ph, _ = parse_phase(phase.split(), LIM)
    c.program.add(ph, phase)
    assert c.program.close(1, LIM) is None
    assert c.session.load() and c.session.begin(c.program)
    c.session.reserve(ph.pulses_max)  # no store write in the step
    c.state = st.EMITTING
    c._start_step()
    b.laser.enable(True)
    c.inputs.update(100_000)  # the foot press is past its debounce
    return b, c


def test_a_stop_read_between_sections_acts_before_emit_arms():
    """'!' comes in after the step's first read, or its second: a look at the
    link before emit() stops emission, so emit() arms nothing (a trigger
    point, time-only, would arm at once), not a stop after the arming."""
    import state as st
    b, c = emitting([], POINT_PH)
    b.t = 10_000
    c.step()
    assert b.laser.arms == 1, "without a stop the step arms the point's pulse"
    for reads_before in (1, 2):
        b, c = emitting([b""] * reads_before + [b"!"], POINT_PH)
        b.t = 10_000
        c.step()
        assert c.state == st.PAUSED, st.NAMES[c.state]
        assert b.laser.arms == 0, "armed before the stop was acted on"
        assert not b.laser.enabled and not b.laser.is_armed
        assert [ln for ln in b.link.lines() if " stop " in ln][0].startswith("ev 10 stop EMITTING*")


def test_bytes_read_between_sections_wait_for_the_next_line_intake():
    """A line read mid-step is handed on at the next step's intake, in order
    with what follows it; its real-time bytes acted once, when read."""
    b, c = emitting([b"", b"?STA", b"", b"TUS\n", b"", b""])
    b.t = 10_000
    c.step()
    out = b.link.lines()
    assert len([ln for ln in out if ln.startswith("st ")]) == 1, out  # the '?' at once
    assert not [ln for ln in out if ln.startswith("ok ")], out  # the line is not complete yet
    b.t = 12_000
    c.step()
    out = b.link.lines()
    assert len([ln for ln in out if ln.startswith("st ")]) == 1, out  # not a second time
    assert len([ln for ln in out if ln.startswith("ok - t=")]) == 1, out  # STATUS answered
