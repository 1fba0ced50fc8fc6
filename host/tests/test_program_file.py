"""Program files: every error names the phase, the field and the limit."""
from decimal import Decimal

import pytest

from handpiece.program import ProgramError, load, parse, rate_notes, validate

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
    ({"mode": "burst"}, 'mode must be "scan" or "point", got .burst.'),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"points": 3}, "points is not used in scan mode"),
    ({"energy_j": "lots"}, "energy_j must be a number"),
    ({"energy_j": 1.23456}, r"energy_j = 1.23456 has more than 3 decimals \(the device keeps whole millijoules\)"),
    ({"rate_hz": True}, "rate_hz must be a number"),
    ({"width_us": -5}, "width_us = -5 is negative: it must be 0 us or more"),
    ({"energy_j": -5}, "energy_j = -5 is negative: it must be 0 J or more"),
    ({"width_us": 120.5}, r"width_us = 120.5 must be a whole number of us \(the device keeps whole microseconds\)"),
    ({"width_us": "120"}, r"width_us must be a number of us \(no quotes\), got .120."),
    ({"width_us": 1e100}, "width_us must be a number from 0"),
])
def test_malformed_phases_name_the_field(over, message):
    with pytest.raises(ProgramError, match=message):
        parse(scan(**over))


def test_missing_mode_says_what_is_allowed():
    bad = scan()
    del bad["phase"][0]["mode"]
    with pytest.raises(ProgramError, match='phase 1: missing mode: write mode = "scan" .* or mode = "point"'):
        parse(bad)


@pytest.mark.parametrize("where", ["phase", "program"])
def test_control_characters_in_names_are_refused(where):
    bad = scan(name="scan")
    if where == "phase":
        bad["phase"][0]["name"] = "knee \u202eleft"  # a right-to-left override
    else:
        bad["program"] = {"name": "knee\x1b[2Jright"}
    with pytest.raises(ProgramError, match="name has a control character U\\+(202E|001B) at character (6|5)"):
        parse(bad)


def test_a_file_that_is_not_utf8_is_named_by_position(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes(b"[program]\nname = 'genou \xe9'\n")
    with pytest.raises(ProgramError, match=r"not UTF-8 text: byte 0xE9 at offset 24 \(line 2\)"):
        load(p)


def test_rate_clamped_by_average_power_is_told_with_its_cost():
    """40 Hz x 0.45 J = 18 W against 10.5 W: the device slows the phase to 23.3 Hz."""
    prog = parse({"phase": [{"name": "tp", "mode": "point", "width_us": 150, "power_w": 3000, "rate_hz": 40,
                             "points": 8, "tol_mm": 0.5, "energy_j": 200}]})
    validate(prog, LIMITS)
    notes = rate_notes(prog, LIMITS)
    assert notes == ["phase 1 (tp): rate 40 Hz x 0.45 J = 18 W is over the average power limit 10.5 W: "
                     "the device will slow it to 23.3 Hz; 440 pulses take 19 s instead of 11 s (+8 s)"]
    ok = parse(scan(rate_hz=20, spacing_mm=7.5))  # 20 Hz x 7.5 mm = 150 mm/s: the whole band
    assert rate_notes(ok, LIMITS) == []
    slow = parse(scan(rate_hz=20, spacing_mm=3.3))
    assert rate_notes(slow, LIMITS) == ["phase 1 (s): at 20.0 Hz and 3.3 mm spacing a hand faster than 66 mm/s "
                                        "(the band goes to 150) leaves path without pulses"]


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
