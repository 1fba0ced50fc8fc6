"""The reference board's hard limits and default settings.

These are the figures of the reference device (docs/requirements.md, device
figures: peak power up to 3000 W, pulse width 100 to 150 us, repetition rate 10 to
40 Hz, average power limit 10.5 W), plus the session cap and pacing bounds
every board has carried so far. firmware/limits.py names the keys.

A board definition takes a copy of these tables (`LIMITS = dict(reference.LIMITS)`)
and may change a value there, for its own hardware and with a comment saying
why; the tables the board hands the core are its own. Nothing changes them
over the wire: the limits are fixed when the board definition is written
(SR-15), and the settings are the board's defaults.

The tables are written as keyword arguments: their names are then interned
(qstrs), and a board that imports this module before the firmware's modules
lets their copies of the same names share them instead of each loading its own
string (docs/boards.md, "Heap").
"""

LIMITS = dict(
    power_w_max=3000,
    width_us_min=100,
    width_us_max=150,
    rate_hz_min=10,
    rate_hz_max=40,
    avg_power_mw_max=10500,
    avg_window_ms=1000,
    session_j_max=1500,
    spacing_um_min=1000,
    spacing_um_max=20000,
    dwell_mj_per_cm_max=15000,
    dwell_window_ms=10000,
    point_tol_um_max=2000,
)

SETTINGS = dict(
    ready_delay_ms=2000,
    debounce_ms=20,
    counts_per_mm=20,  # encoder strip 5 lines/mm, x4 quadrature: 0.05 mm per count
    deadband_counts=4,  # reversals smaller than 0.2 mm are tremor, not travel
    wdt_timeout_ms=200,
    control_period_us=2000,
    energy_tol_pct=20,
)
