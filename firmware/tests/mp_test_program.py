# Program parsing and validation against hard limits (SR-6, SR-7, SR-15).
from limits import Limits
from parse import fixed, pairs
from program import POINT, Program, parse_phase

LIM = Limits({
    "power_w_max": 3000, "width_us_min": 100, "width_us_max": 150, "rate_hz_min": 10, "rate_hz_max": 40,
    "avg_power_mw_max": 10500, "avg_window_ms": 1000, "session_j_max": 1500,
    "spacing_um_min": 1000, "spacing_um_max": 20000, "dwell_mj_per_cm_max": 15000,
    "dwell_window_ms": 10000, "point_tol_um_max": 2000,
})
SCAN = "mode=scan width_us=120 power_w=3000 rate_hz=30 energy_j=500 spacing_mm=3.3 speed_min_mm_s=70 speed_max_mm_s=130"
POINT_PH = "mode=point width_us=120 power_w=3000 rate_hz=10 energy_j=250 points=8 tol_mm=0.5"


def expect_error(words, fragment):
    ph, why = parse_phase(words.split(), LIM)
    if ph is not None and why is None:
        raise AssertionError("accepted: " + words)
    if fragment not in why:
        raise AssertionError("error %r does not mention %r" % (why, fragment))


def test_fixed_point_is_exact():
    assert fixed("3.3", 3) == 3300
    assert fixed("31.25", 3) == 31250
    assert fixed("500", 3) == 500000
    for bad in ("", "1.2345", "-1", "1e3", "x", "1.", ".5x"):
        try:
            fixed(bad, 3)
        except ValueError:
            continue
        raise AssertionError("accepted " + bad)


def test_pairs_rejects_repeats_and_bare_words():
    assert pairs(["a=1", "b=2"]) == {"a": "1", "b": "2"}
    for bad in (["a=1", "a=2"], ["a"], ["=1"], ["a="]):
        try:
            pairs(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad)


def test_scan_phase_counts_whole_pulses():
    ph, why = parse_phase(SCAN.split(), LIM)
    assert why is None, why
    assert ph.pulse_uj == 360000
    assert ph.pulses_max == 1388  # 1388 x 0.36 J = 499.68 J <= 500 J, 1389 would pass it
    assert ph.pulses_max * ph.pulse_uj <= ph.energy_mj * 1000
    assert (ph.pulses_max + 1) * ph.pulse_uj > ph.energy_mj * 1000
    assert ph.spacing_um == 3300


def test_period_honours_average_power():
    ph, _ = parse_phase(SCAN.split(), LIM)
    # 0.36 J at 10.5 W average: at least 34286 us apart, though 30 Hz asks for 33334
    assert ph.period_us == 34286
    assert ph.pulse_uj * 1_000_000 // ph.period_us <= 10_500_000


def test_point_phase_splits_into_points():
    ph, why = parse_phase(POINT_PH.split(), LIM)
    assert why is None, why
    assert ph.mode == POINT
    assert ph.pulses_per_point == 86  # 31.25 J / 0.36 J
    assert ph.pulses_max == 8 * 86


def test_every_limit_is_named_in_its_refusal():
    expect_error(SCAN.replace("power_w=3000", "power_w=3001"), "power_w 3001 > 3000")
    expect_error(SCAN.replace("width_us=120", "width_us=99"), "width_us 99 < 100")
    expect_error(SCAN.replace("width_us=120", "width_us=151"), "width_us 151 > 150")
    expect_error(SCAN.replace("rate_hz=30", "rate_hz=41"), "rate_hz 41 > 40")
    expect_error(SCAN.replace("energy_j=500", "energy_j=1501"), "energy_j 1501 > 1500")
    expect_error(SCAN.replace("spacing_mm=3.3", "spacing_mm=0.5"), "spacing_mm(um) 500 < 1000")
    expect_error(POINT_PH.replace("tol_mm=0.5", "tol_mm=2.5"), "tol_mm(um) 2500 > 2000")
    expect_error(POINT_PH.replace("points=8", "points=33"), "points 33 > 32")
    expect_error(SCAN.replace("rate_hz=30", "rate_hz=9"), "rate_hz 9 < 10")  # the device's 10-40 Hz
    expect_error(SCAN.replace("rate_hz=30", "rate_hz=0"), "rate_hz 0 < 10")
    expect_error(SCAN.replace("power_w=3000", "power_w=0"), "power_w 0 < 1")
    expect_error(POINT_PH.replace("points=8", "points=0"), "points 0 < 1")


def test_malformed_phases_are_refused():
    expect_error(SCAN.replace("mode=scan", "mode=burst"), "mode")
    expect_error(SCAN + " points=3", "points not used in scan")
    expect_error(SCAN.replace(" spacing_mm=3.3", ""), "missing spacing_mm")
    expect_error(SCAN + " colour=red", "unknown field colour")
    expect_error(SCAN.replace("energy_j=500", "energy_j=5x"), "bad number energy_j")
    expect_error(SCAN.replace("energy_j=500", "energy_j=0.1"), "below one pulse")


def test_program_total_against_session_cap():
    p = Program()
    for _ in range(4):
        ph, _ = parse_phase(SCAN.split(), LIM)
        assert p.add(ph, SCAN) is None
    why = p.close(4, LIM)
    assert why is not None and "session energy_j 1998 > 1500" in why, why
    assert not p.valid


def test_program_close_checks_count_and_identity():
    a, b = Program(), Program()
    for p in (a, b):
        ph, _ = parse_phase(SCAN.split(), LIM)
        p.add(ph, SCAN)
    assert "phase count 2" in a.close(2, LIM)
    assert a.close(1, LIM) is None and a.valid
    assert b.close(1, LIM) is None
    assert a.crc == b.crc  # same phases, same identity
    c = Program()
    ph, _ = parse_phase(POINT_PH.split(), LIM)
    c.add(ph, POINT_PH)
    assert c.crc != a.crc


def test_program_identity_is_a_crc32():
    from program import crc32

    assert crc32("123456789") == 0xCBF43926  # the CRC-32 check value
    assert crc32("6789", crc32("12345")) == 0xCBF43926  # continued over pieces


# Two phase lines with the same CRC-16 (the identity before CRC-32): different programs.
TWIN_A = ("mode=scan width_us=120 power_w=3000 rate_hz=30 energy_j=69 spacing_mm=4.9 "
          "speed_min_mm_s=20 speed_max_mm_s=150")
TWIN_B = ("mode=scan width_us=120 power_w=3000 rate_hz=30 energy_j=100 spacing_mm=2.2 "
          "speed_min_mm_s=20 speed_max_mm_s=150")


def test_programs_whose_crc16_collide_have_different_identities():
    a, b = Program(), Program()
    for p, text in ((a, TWIN_A), (b, TWIN_B)):
        ph, _ = parse_phase(text.split(), LIM)
        p.add(ph, text)
    assert a.crc != b.crc
