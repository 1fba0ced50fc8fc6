"""Program files: every error names the phase, the field and the limit."""
from decimal import Decimal

import pytest

from handpiece.program import ProgramError, load, parse, validate

LIMITS = {"power_w_max": 3000, "width_us_min": 100, "width_us_max": 150, "rate_hz_min": 10, "rate_hz_max": 40,
          "avg_power_mw_max": 10500, "avg_window_ms": 1000, "session_j_max": 1500, "spacing_um_min": 1000,
          "spacing_um_max": 20000, "dwell_mj_per_cm_max": 15000, "dwell_window_ms": 10000, "point_tol_um_max": 2000}


def scan(**over):
    ph = {"name": "s", "mode": "scan", "width_us": 120, "power_w": 3000, "rate_hz": 30, "energy_j": 100,
          "spacing_mm": 3.3, "speed_min_mm_s": 20, "speed_max_mm_s": 150}
    ph.update(over)
    return {"phase": [ph]}


def test_reference_program_is_valid_and_exact():
    prog = load("programs/knee-oa-reference.toml")
    validate(prog, LIMITS)
    assert [p.pulses for p in prog.phases] == [1388, 688, 1388]
    assert prog.delivered_j == Decimal("1247.04")
    assert prog.phases[0].wire().startswith("mode=scan width_us=120 power_w=3000 rate_hz=30 energy_j=500")


@pytest.mark.parametrize("over,message", [
    ({"power_w": 3500}, "phase 1 (s): power_w 3500 above the limit 3000"),
    ({"width_us": 90}, "width_us 90 below the limit 100"),
    ({"rate_hz": 5}, "rate_hz 5 below the limit 10"),
    ({"spacing_mm": 0.5}, "spacing_mm 0.5 below the limit 1"),
    ({"energy_j": 2000}, "energy_j 2000 above the limit 1500"),
    ({"speed_min_mm_s": 200}, "speed_min_mm_s must be above 0 and below speed_max_mm_s"),
    ({"energy_j": 0.1}, "below one pulse per point"),
])
def test_limit_errors_name_field_and_limit(over, message):
    with pytest.raises(ProgramError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(parse(scan(**over)), LIMITS)


@pytest.mark.parametrize("over,message", [
    ({"mode": "burst"}, "mode must be 'scan' or 'point'"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"points": 3}, "points is not used in scan mode"),
    ({"energy_j": "lots"}, "energy_j must be a number"),
    ({"energy_j": 1.23456}, "more than 3 decimals"),
    ({"rate_hz": True}, "rate_hz must be a number"),
    ({"width_us": -5}, "width_us must be a number from 0 to 999999999"),
    ({"width_us": "120"}, "width_us must be a number, got .120."),
    ({"width_us": 1e100}, "width_us must be a number from 0"),
])
def test_malformed_phases_name_the_field(over, message):
    with pytest.raises(ProgramError, match=message):
        parse(scan(**over))


def test_missing_field_is_named():
    bad = scan()
    del bad["phase"][0]["spacing_mm"]
    with pytest.raises(ProgramError, match="phase 1: missing spacing_mm"):
        parse(bad)


def test_wrong_files(tmp_path):
    with pytest.raises(ProgramError, match="cannot read"):
        load(tmp_path / "absent.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[[phase]\nmode=")
    with pytest.raises(ProgramError, match="not valid TOML"):
        load(p)
    p.write_text("[program]\nname='x'\n")
    with pytest.raises(ProgramError, match="no \\[\\[phase\\]\\] tables"):
        load(p)


def test_session_total_over_the_cap():
    two = {"phase": [scan(energy_j=800)["phase"][0], scan(energy_j=800)["phase"][0]]}
    with pytest.raises(ProgramError, match=r"session energy_j 1599.84 \(whole pulses\) above the limit 1500"):
        validate(parse(two), LIMITS)


def test_a_phase_must_be_a_table():
    with pytest.raises(ProgramError, match="phase 1: must be a \\[\\[phase\\]\\] table"):
        parse({"phase": [1, 2]})
