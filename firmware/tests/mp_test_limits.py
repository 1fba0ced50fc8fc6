# Board limits and settings are checked at boot: a board with a missing or
# out-of-range value does not start, and the error names it.
from limits import SETTINGS, check_settings

GOOD = {"ready_delay_ms": 2000, "debounce_ms": 20, "counts_per_mm": 20, "deadband_counts": 4,
        "wdt_timeout_ms": 200, "control_period_us": 2000, "energy_tol_pct": 20}


def refusal(settings):
    try:
        check_settings(settings)
    except ValueError as e:
        return str(e)
    return None


def test_the_reference_settings_pass():
    assert refusal(GOOD) is None
    assert sorted(GOOD) == sorted(key for key, _, _ in SETTINGS)


def test_a_missing_setting_is_named():
    s = dict(GOOD)
    del s["energy_tol_pct"]
    assert refusal(s) == "board setting energy_tol_pct=None, want 1..100"


def test_a_setting_out_of_range_or_not_a_whole_number_is_named():
    for key, bad in (("counts_per_mm", 0), ("energy_tol_pct", 101), ("debounce_ms", -1), ("ready_delay_ms", 2.5)):
        s = dict(GOOD)
        s[key] = bad
        why = refusal(s)
        assert why is not None and why.startswith("board setting %s=" % key), (key, why)


def test_the_loop_period_must_be_shorter_than_the_watchdog():
    s = dict(GOOD)
    s["control_period_us"] = 100_000
    s["wdt_timeout_ms"] = 100
    assert refusal(s) == "board setting control_period_us must be below wdt_timeout_ms"
