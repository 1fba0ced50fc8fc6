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
    def __init__(self, limits):
        for key in KEYS:
            v = limits.get(key)
            if not isinstance(v, int) or v <= 0:
                raise ValueError("board limit " + key)
            setattr(self, key, v)

    def items(self):
        return [(key, getattr(self, key)) for key in KEYS]


# Every key is required in a board's `settings`, a whole number, 0 or more.
SETTING_KEYS = (
    "ready_delay_ms",  # SR-5; 0 only for bench variants
    "debounce_ms",
    "counts_per_mm",
    "deadband_counts",
    "wdt_timeout_ms",
    "control_period_us",
    "energy_tol_pct",
)


def check_settings(settings):
    """Raise ValueError naming the first missing or impossible setting."""
    for key in SETTING_KEYS:
        v = settings.get(key)
        if not isinstance(v, int) or v < 0:
            raise ValueError("board setting " + key)
    if (settings["counts_per_mm"] < 1 or settings["energy_tol_pct"] > 100
            or not 0 < settings["control_period_us"] < settings["wdt_timeout_ms"] * 1000):
        raise ValueError("board settings: counts_per_mm >= 1, energy_tol_pct <= 100, "
                         "0 < control_period_us < wdt_timeout_ms")


def over(name, value, limit):
    """Error text naming the field, the value and the limit it broke."""
    return "%s %d > %d" % (name, value, limit)


def under(name, value, limit):
    return "%s %d < %d" % (name, value, limit)
