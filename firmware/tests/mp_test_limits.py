# Board settings are checked at boot like the limits: a board with a missing
# or impossible setting does not start, and the error names it.
from limits import KEYS, SETTING_KEYS, Limits, check_settings

GOOD = {"ready_delay_ms": 2000, "debounce_ms": 20, "counts_per_mm": 20, "deadband_counts": 4,
        "wdt_timeout_ms": 200, "control_period_us": 2000, "energy_tol_pct": 20}
RULES = "board settings: counts_per_mm >= 1, energy_tol_pct <= 100, 0 < control_period_us < wdt_timeout_ms"


def refusal(settings):
    try:
        check_settings(settings)
    except ValueError as e:
        return str(e)
    return None


def test_the_reference_settings_pass():
    assert refusal(GOOD) is None
    assert sorted(GOOD) == sorted(SETTING_KEYS)


def test_a_missing_negative_or_fractional_setting_is_named():
    for key, bad in (("energy_tol_pct", None), ("debounce_ms", -1), ("ready_delay_ms", 2.5)):
        s = dict(GOOD)
        if bad is None:
            del s[key]
        else:
            s[key] = bad
        assert refusal(s) == "board setting " + key, key


def test_settings_that_cannot_work_together_are_refused():
    for key, bad in (("counts_per_mm", 0), ("energy_tol_pct", 101), ("control_period_us", 0),
                     ("control_period_us", 200_000)):
        s = dict(GOOD)
        s[key] = bad
        assert refusal(s) == RULES, (key, bad)


def test_a_missing_limit_or_one_of_zero_or_below_or_fractional_is_named():
    for bad in (None, 0, -1, 2.5):
        limits = {key: 100 for key in KEYS}
        if bad is None:
            del limits["power_w_max"]
        else:
            limits["power_w_max"] = bad
        try:
            Limits(limits)
            got = None
        except ValueError as e:
            got = str(e)
        assert got == "board limit power_w_max", bad
    assert Limits({key: 1 for key in KEYS}).power_w_max == 1
