"""The HAL contract of firmware/hal.py as names, checked on every board by its
logic test and by hal_contract.py. Kept here, not in hal.py: a board loads every
name and table of the firmware's modules into its heap, and only tests read these.
"""

# Every attribute a board must provide (hal.py's docstring says what each does).
CONTRACT = {
    "": ("name", "limits", "settings", "ticks_us", "wait", "reset_cause", "reboot"),
    "laser": ("off", "enable", "configure", "arm", "disarm", "armed", "take_pulse", "stray_light", "pd_step_uj"),
    "encoder": ("count",),
    "inputs": ("read",),
    "indicator": ("set",),
    "link": ("readinto", "write"),
    "store": ("read", "write"),
    "wdt": ("start", "feed"),
}


def missing(board):
    """Names in CONTRACT that `board` does not provide (empty when complete)."""
    out = []
    for part, names in CONTRACT.items():
        obj = getattr(board, part, None) if part else board
        for n in names:
            if obj is None or not hasattr(obj, n):
                out.append(part + "." + n if part else n)
    return out
