"""Hard limits (SR-15) and board settings: read once from the board
definition, never from the wire, and checked at boot.

There is no setter: a program or setting outside a limit is refused with the
limit in the error, and nothing over the serial line can change these values.
A board whose limits or settings are missing or out of range does not start:
the controller raises ValueError naming the key (the laser stays off).
"""

# Every key is required in a board's `limits`; units are in the names.
KEYS = (
    "power_w_max",  # peak optical power
    "width_us_min",
    "width_us_max",
    "rate_hz_min",  # repetition rate range of the device
    "rate_hz_max",
    "avg_power_mw_max",  # over any avg_window_ms
    "avg_window_ms",
    "session_j_max",  # hard cap on one session's delivered energy
    "spacing_um_min",
    "spacing_um_max",
    "dwell_mj_per_cm_max",  # energy per cm of skin over dwell_window_ms
    "dwell_window_ms",
    "point_tol_um_max",  # largest trigger-point motion tolerance a program may ask
)


class Limits:
    def __init__(self, table):
        for k in KEYS:
            v = table[k]
            if not isinstance(v, int) or v <= 0:
                raise ValueError("board limit " + k)
            setattr(self, k, v)

    def items(self):
        return [(k, getattr(self, k)) for k in KEYS]


# Every key is required in a board's `settings`: (key, lowest, highest).
# The ranges catch a typo or a wrong unit, not a tuning choice.
SETTINGS = (
    ("ready_delay_ms", 0, 60_000),  # SR-5; 0 only for bench variants
    ("debounce_ms", 0, 1_000),
    ("counts_per_mm", 1, 10_000),
    ("deadband_counts", 0, 10_000),
    ("wdt_timeout_ms", 10, 8_000),  # the rp2 watchdog's longest is 8.3 s
    ("control_period_us", 100, 100_000),
    ("energy_tol_pct", 1, 100),
)


def check_settings(settings):
    """Raise ValueError naming the first missing or out-of-range setting."""
    for key, lo, hi in SETTINGS:
        v = settings.get(key)
        if not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError("board setting %s=%s, want %d..%d" % (key, v, lo, hi))
    if settings["control_period_us"] >= settings["wdt_timeout_ms"] * 1000:
        raise ValueError("board setting control_period_us must be below wdt_timeout_ms")


def over(name, value, limit):
    """Error text naming the field, the value and the limit it broke."""
    return "%s %d > %d" % (name, value, limit)


def under(name, value, limit):
    return "%s %d < %d" % (name, value, limit)
