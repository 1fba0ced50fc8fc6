# The controller's per-pulse photodiode check (SR-10).
from controller import Controller
from fakes import FullBoard
from mp_test_program import LIM, SCAN
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
