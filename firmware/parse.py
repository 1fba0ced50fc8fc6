"""Argument parsing for command lines: `key=value` words and fixed-point numbers.

Values are kept as integers in a small unit (um, mJ) so that no float rounding
can move a dose: "3.3" mm with 3 decimals becomes 3300 um exactly.
"""


def fixed(text, decimals):
    """'31.25' with 3 decimals -> 31250. Raises ValueError on anything else,
    including more decimals than the unit can hold (no silent rounding)."""
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or (dot and not frac.isdigit()) or len(frac) > decimals:
        raise ValueError(text)
    return int(whole) * 10 ** decimals + int((frac + "000000")[:decimals] or "0")


def pairs(words):
    """['a=1', 'b=2'] -> {'a': '1', 'b': '2'}; a word without '=' or a repeated
    key raises ValueError naming it."""
    out = {}
    for w in words:
        key, eq, v = w.partition("=")
        if not eq or not key or not v or key in out:
            raise ValueError(w)
        out[key] = v
    return out
