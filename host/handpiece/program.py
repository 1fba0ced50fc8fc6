"""Treatment programs as files (TOML): load, validate, upload.

The host checks a program against the device's hard limits (from `LIMITS`) so
the operator hears about a mistake before anything is sent; the device checks
again on its own, since it trusts nothing from the wire. Every error names the
phase, the field and, where one applies, the limit.

    [program]
    name = "..."
    [[phase]]
    name = "fast scan"
    mode = "scan"          # or "point"
    width_us = 120
    power_w = 3000
    rate_hz = 30
    energy_j = 500
    spacing_mm = 3.3       # scan
    speed_min_mm_s = 70    # scan
    speed_max_mm_s = 130   # scan
    points = 8             # point
    tol_mm = 0.5           # point
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .escape import is_control

MAX_PHASES = 8
MAX_POINTS = 32

# field -> (decimals the device keeps, modes that need it)
FIELDS = {
    "width_us": (0, "sp"),
    "power_w": (0, "sp"),
    "rate_hz": (0, "sp"),
    "energy_j": (3, "sp"),
    "spacing_mm": (3, "s"),
    "speed_min_mm_s": (0, "s"),
    "speed_max_mm_s": (0, "s"),
    "points": (0, "p"),
    "tol_mm": (3, "p"),
}
# how each field is said to a person, and what the device keeps of it
UNITS = {
    "width_us": ("us", "whole microseconds"),
    "power_w": ("W", "whole watts"),
    "rate_hz": ("Hz", "whole hertz"),
    "energy_j": ("J", "whole millijoules"),
    "spacing_mm": ("mm", "whole micrometres"),
    "speed_min_mm_s": ("mm/s", "whole mm/s"),
    "speed_max_mm_s": ("mm/s", "whole mm/s"),
    "points": ("points", "whole points"),
    "tol_mm": ("mm", "whole micrometres"),
}


class ProgramError(ValueError):
    """A program file that cannot run; the message names what is wrong."""


@dataclass
class Phase:
    name: str
    mode: str
    values: dict[str, Decimal]

    def __getitem__(self, key: str) -> Decimal:
        return self.values[key]

    @property
    def pulse_j(self) -> Decimal:
        return self["power_w"] * self["width_us"] / Decimal(1_000_000)

    @property
    def pulses(self) -> int:
        """Whole pulses the phase delivers (the device's own rule)."""
        points = int(self.values.get("points", 1))
        per_point = int(self["energy_j"] / points / self.pulse_j) if self.mode == "point" else 0
        if self.mode == "point":
            return per_point * points
        return int(self["energy_j"] / self.pulse_j)

    @property
    def delivered_j(self) -> Decimal:
        return self.pulses * self.pulse_j

    def describe(self) -> dict:
        """The phase as the record's header keeps it."""
        return {"name": self.name, "mode": self.mode, **{k: _plain(v) for k, v in self.values.items()}}

    def rate_hz(self, limits: dict[str, int]) -> Decimal:
        """The repetition rate the device will keep: the program's, slowed
        where the average power limit needs it (the device's own rule)."""
        rate = min(int(self["rate_hz"]), limits["rate_hz_max"])
        pulse_uj = int(self["power_w"] * self["width_us"])
        period_us = max(-(-1_000_000 // rate), -(-pulse_uj * 1000 // limits["avg_power_mw_max"]))
        return Decimal(1_000_000) / period_us

    def wire(self) -> str:
        """The PADD arguments, numbers written exactly as in the file."""
        words = [f"mode={self.mode}"]
        for key, (_, modes) in FIELDS.items():
            if self.mode[0] in modes:
                words.append(f"{key}={_plain(self[key])}")
        return " ".join(words)


@dataclass
class Program:
    name: str
    phases: list[Phase]
    path: Path | None = None
    sha256: str | None = None  # of the file as read

    @property
    def energy_j(self) -> Decimal:
        return sum((p["energy_j"] for p in self.phases), Decimal(0))

    @property
    def delivered_j(self) -> Decimal:
        return sum((p.delivered_j for p in self.phases), Decimal(0))


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _number(where: str, key: str, raw: object, decimals: int) -> Decimal:
    """A TOML number (not a string: "120" is refused) as an exact Decimal.
    Errors say what is allowed in the file's own units."""
    unit, kept = UNITS[key]
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ProgramError(f"{where}: {key} must be a number of {unit} (no quotes), got {raw!r}")
    d = Decimal(str(raw))
    if not d.is_finite() or d >= 10**9:
        raise ProgramError(f"{where}: {key} must be a number from 0 to 999999999 {unit}, got {raw!r}")
    if d < 0:
        raise ProgramError(f"{where}: {key} = {raw} is negative: it must be 0 {unit} or more")
    if d != d.quantize(Decimal(1).scaleb(-decimals)):
        if decimals == 0:
            raise ProgramError(f"{where}: {key} = {raw} must be a whole number of {unit} "
                               f"(the device keeps {kept})")
        raise ProgramError(f"{where}: {key} = {raw} has more than {decimals} decimals "
                           f"(the device keeps {kept})")
    return d


def _name(where: str, raw: object) -> str:
    """A name is plain text: a control character (a right-to-left override
    can make it read as something else) is refused, not shown."""
    if not isinstance(raw, str):
        raise ProgramError(f"{where}: name must be text in quotes, got {raw!r}")
    for i, ch in enumerate(raw):
        if is_control(ch):
            raise ProgramError(f"{where}: name has a control character U+{ord(ch):04X} at character {i + 1}: "
                               "names must be plain text")
    return raw


def parse(data: dict, source: str = "program") -> Program:
    head = data.get("program", {})
    if not isinstance(head, dict):
        raise ProgramError(f"{source}: [program] must be a table")
    raw_phases = data.get("phase")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise ProgramError(f"{source}: no [[phase]] tables")
    if len(raw_phases) > MAX_PHASES:
        raise ProgramError(f"{source}: {len(raw_phases)} phases > {MAX_PHASES}")
    phases = []
    for i, rp in enumerate(raw_phases):
        where = f"{source}: phase {i + 1}"
        if not isinstance(rp, dict):
            raise ProgramError(f"{where}: must be a [[phase]] table")
        name = _name(where, rp.get("name", f"phase {i + 1}"))
        if "mode" not in rp:
            raise ProgramError(f"{where}: missing mode: write mode = \"scan\" (sweeps paced by distance) "
                               "or mode = \"point\" (trigger points, hand held still)")
        mode = rp["mode"]
        if mode not in ("scan", "point"):
            raise ProgramError(f"{where}: mode must be \"scan\" or \"point\", got {mode!r}")
        values = {}
        for key in rp:
            if key not in FIELDS and key not in ("name", "mode"):
                raise ProgramError(f"{where}: unknown field {key!r}")
        for key, (decimals, modes) in FIELDS.items():
            if mode[0] not in modes:
                if key in rp:
                    raise ProgramError(f"{where}: {key} is not used in {mode} mode")
                continue
            if key not in rp:
                raise ProgramError(f"{where}: missing {key}")
            values[key] = _number(where, key, rp[key], decimals)
        phases.append(Phase(name, mode, values))
    return Program(_name(f"{source}: [program]", head.get("name", source)), phases)


def load(path: str | Path) -> Program:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ProgramError(f"cannot read {p}: {e.strerror}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ProgramError(f"{p}: not UTF-8 text: byte 0x{raw[e.start]:02X} at offset {e.start} (line {line})") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProgramError(f"{p}: not valid TOML: {e}") from e
    prog = parse(data, p.name)
    prog.path = p
    prog.sha256 = hashlib.sha256(raw).hexdigest()
    return prog


def validate(prog: Program, limits: dict[str, int]) -> None:
    """Check against the device's hard limits; raise ProgramError on the first breach."""
    total = Decimal(0)
    for i, ph in enumerate(prog.phases):
        where = f"phase {i + 1} ({ph.name})"

        def over(key: str, value: Decimal, limit: int, unit_scale: int = 1) -> None:
            if value * unit_scale > limit:
                raise ProgramError(f"{where}: {key} {_plain(value)} above the limit {limit / unit_scale:g}")  # noqa: B023

        def under(key: str, value: Decimal, limit: int, unit_scale: int = 1) -> None:
            if value * unit_scale < limit:
                raise ProgramError(f"{where}: {key} {_plain(value)} below the limit {limit / unit_scale:g}")  # noqa: B023

        for key in ("power_w", "rate_hz", "energy_j"):
            if ph[key] == 0:
                raise ProgramError(f"{where}: {key} must be above 0")
        over("power_w", ph["power_w"], limits["power_w_max"])
        under("width_us", ph["width_us"], limits["width_us_min"])
        over("width_us", ph["width_us"], limits["width_us_max"])
        under("rate_hz", ph["rate_hz"], limits["rate_hz_min"])
        over("rate_hz", ph["rate_hz"], limits["rate_hz_max"])
        over("energy_j", ph["energy_j"], limits["session_j_max"])
        if ph.mode == "scan":
            under("spacing_mm", ph["spacing_mm"], limits["spacing_um_min"], 1000)
            over("spacing_mm", ph["spacing_mm"], limits["spacing_um_max"], 1000)
            if not 0 < ph["speed_min_mm_s"] < ph["speed_max_mm_s"]:
                raise ProgramError(f"{where}: speed_min_mm_s must be above 0 and below speed_max_mm_s")
        else:
            if not 1 <= ph["points"] <= MAX_POINTS:
                raise ProgramError(f"{where}: points must be 1..{MAX_POINTS}")
            over("tol_mm", ph["tol_mm"], limits["point_tol_um_max"], 1000)
        if ph.pulses < int(ph.values.get("points", 1)):
            raise ProgramError(f"{where}: energy_j {_plain(ph['energy_j'])} is below one pulse per point")
        total += ph.delivered_j
    if total > limits["session_j_max"]:  # the device's rule: whole pulses against the cap
        raise ProgramError(f"session energy_j {_plain(total)} (whole pulses) above the limit {limits['session_j_max']}")


def rate_notes(prog: Program, limits: dict[str, int]) -> list[str]:
    """What the device will do other than the file says: phases whose rate
    it slows to keep the average power limit (to what, at what cost in
    time), and scan bands faster than a pulse every spacing allows."""
    notes = []
    avg_w = limits["avg_power_mw_max"] / 1000
    for i, ph in enumerate(prog.phases):
        want = ph["rate_hz"]
        got = ph.rate_hz(limits)
        where = f"phase {i + 1}" + ("" if ph.name == f"phase {i + 1}" else f" ({ph.name})")
        if got < want:
            t_want, t_got = ph.pulses / want, ph.pulses / got
            notes.append(f"{where}: rate {want} Hz x {_plain(ph.pulse_j)} J = {float(want * ph.pulse_j):g} W is "
                         f"over the average power limit {avg_w:g} W: the device will slow it to {float(got):.1f} "
                         f"Hz; {ph.pulses} pulses take {float(t_got):.0f} s instead of {float(t_want):.0f} s "
                         f"(+{float(t_got - t_want):.0f} s)")
        if ph.mode == "scan":
            v_top = float(got * ph["spacing_mm"])
            if v_top < ph["speed_max_mm_s"]:
                notes.append(f"{where}: at {float(got):.1f} Hz and {_plain(ph['spacing_mm'])} mm spacing a hand "
                             f"faster than {v_top:.0f} mm/s (the band goes to {ph['speed_max_mm_s']}) leaves "
                             "path without pulses")
    return notes


def device_limits(device) -> dict[str, int]:
    return {k: int(v) for k, v in device.request("LIMITS").fields.items()}


def upload(device, prog: Program) -> dict[str, str]:
    """Validate against the device's limits, then PCLR / PADD... / PEND."""
    validate(prog, device_limits(device))
    device.request("PCLR")
    for ph in prog.phases:
        device.request("PADD " + ph.wire())
    return device.request(f"PEND {len(prog.phases)}").fields
