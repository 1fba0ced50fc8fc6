"""Text from files and records shown to a person: control characters (a
right-to-left override can make a name read as something else) are shown
as escapes, never acted on by the terminal."""
from __future__ import annotations

import unicodedata


def is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def shown(text: object) -> str:
    """`text` with every control or format character written as \\uXXXX."""
    s = str(text)
    if not any(is_control(ch) for ch in s):
        return s
    return "".join(f"\\u{ord(ch):04x}" if is_control(ch) else ch for ch in s)
