"""Wire format of protocol v1 (docs/protocol.md): build requests, parse lines."""
from __future__ import annotations

from dataclasses import dataclass, field

STOP = b"!"
STATUS = b"?"


def checksum(data: bytes) -> int:
    c = 0
    for b in data:
        c ^= b
    return c


MAX_LINE = 160  # the device's line limit, checksum included


def frame(seq: int, text: str) -> bytes:
    """`N<seq> <text>*XX\n`, the strict form every emission-related command needs.
    Refuses text the device could not take as one frame: bytes outside
    printable ASCII, the real-time bytes `!` and `?`, or a line too long."""
    bad = [ch for ch in text if not " " <= ch <= "~" or ch in "!?"]
    if bad:
        raise ValueError(f"cannot send {bad[0]!r} in a frame: {text!r}")
    body = f"N{seq} {text}".encode("ascii")
    if len(body) + 3 > MAX_LINE:
        raise ValueError(f"frame of {len(body) + 3} bytes is over the device's {MAX_LINE}: {text[:40]!r}...")
    return body + b"*%02X\n" % checksum(body)


class FrameError(ValueError):
    """A line from the device that is not a valid frame (bad checksum, garbage)."""


@dataclass
class Line:
    kind: str  # ok, er, st, ev
    seq: int | None = None  # ok/er: the request's sequence number (None: unframed)
    code: int = 0  # er: error code
    text: str = ""  # the payload after the header
    t_ms: int = 0  # ev: device time
    name: str = ""  # ev: event name
    fields: dict[str, str] = field(default_factory=dict)
    raw: str = ""


def parse_fields(text: str) -> dict[str, str]:
    out = {}
    for word in text.split():
        k, eq, v = word.partition("=")
        if eq:
            out[k] = v
    return out


def parse(raw: bytes) -> Line:
    """Parse one line (without its newline). Raises FrameError if it is not a
    valid device frame."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        raise FrameError(f"non-ASCII line {raw!r}") from e
    body, star, cs = text.rpartition("*")
    if not star or len(cs) != 2:
        raise FrameError(f"no checksum: {text!r}")
    if f"{checksum(body.encode()):02X}" != cs.upper():
        raise FrameError(f"bad checksum: {text!r}")
    try:
        return _fields(text, body)
    except ValueError as e:  # a number that is none: a torn line whose checksum matched by chance
        raise FrameError(f"malformed line: {text!r}") from e


def _fields(text: str, body: str) -> Line:
    kind, _, rest = body.partition(" ")
    if kind in ("ok", "er"):
        seq_s, _, rest = rest.partition(" ")
        seq = None if seq_s == "-" else int(seq_s)
        code = 0
        if kind == "er":
            code_s, _, rest = rest.partition(" ")
            if code_s[:1] != "E":
                raise ValueError(code_s)
            code = int(code_s[1:])
        return Line(kind, seq=seq, code=code, text=rest, fields=parse_fields(rest), raw=text)
    if kind == "st":
        return Line(kind, text=rest, fields=parse_fields(rest), raw=text)
    if kind == "ev":
        t_s, _, rest = rest.partition(" ")
        name, _, rest = rest.partition(" ")
        return Line(kind, t_ms=int(t_s), name=name, text=rest, fields=parse_fields(rest), raw=text)
    raise FrameError(f"unknown line kind {kind!r}: {text!r}")


KINDS = (b"ok ", b"er ", b"st ", b"ev ")  # how every device line begins


def recover(raw: bytes) -> Line | None:
    """The whole line at the end of `raw`, a line that failed to parse: a
    line the link broke off (its rest lost on the wire) joins the next one
    (docs/protocol.md). That next line starts where a line kind starts and
    its rest is a valid line; None unless exactly one such place exists
    (several: which one is the line cannot be told, so none is taken)."""
    found = []
    for i in range(1, len(raw) - 2):
        if raw[i:i + 3] in KINDS:
            try:
                found.append(parse(raw[i:]))
            except FrameError:
                pass
    return found[0] if len(found) == 1 else None
