"""Treatment programs: phases received over the wire, validated against the
board's hard limits before anything can run (SR-6, SR-7, SR-15).

Doses are counted in whole pulses: a phase of `energy_j` with pulses of
`power_w * width_us` allows floor(energy / pulse) pulses, so no pulse can take
the total past the target and the pulse path only compares two small ints.
The remainder (less than one pulse) is not delivered; it is reported as the
phase's shortfall.
"""
from micropython import const

from limits import over, under
from parse import fixed, pairs

SCAN = const(0)
POINT = const(1)
MODES = ("scan", "point")
MAX_PHASES = const(8)
MAX_POINTS = const(32)

# wire name -> (attribute, decimals kept, the modes that need it)
FIELDS = {
    "width_us": ("width_us", 0, (SCAN, POINT)),
    "power_w": ("power_w", 0, (SCAN, POINT)),
    "rate_hz": ("rate_hz", 0, (SCAN, POINT)),
    "energy_j": ("energy_mj", 3, (SCAN, POINT)),
    "spacing_mm": ("spacing_um", 3, (SCAN,)),
    "speed_min_mm_s": ("speed_min_mm_s", 0, (SCAN,)),
    "speed_max_mm_s": ("speed_max_mm_s", 0, (SCAN,)),
    "points": ("points", 0, (POINT,)),
    "tol_mm": ("tol_um", 3, (POINT,)),
}


class Phase:
    def __init__(self):
        self.mode = SCAN
        self.width_us = self.power_w = self.rate_hz = self.energy_mj = 0
        self.spacing_um = self.speed_min_mm_s = self.speed_max_mm_s = 0
        self.points = 1
        self.tol_um = 0
        self.pulse_uj = self.pulses_max = self.pulses_per_point = self.period_us = 0

    def derive(self, lim):
        """Fill the derived fields; return an error text or None."""
        self.pulse_uj = self.power_w * self.width_us
        self.pulses_max = self.energy_mj * 1000 // self.pulse_uj
        if self.pulses_max < self.points:
            return "energy_j below one pulse per point"
        self.pulses_per_point = self.pulses_max // self.points
        self.pulses_max = self.pulses_per_point * self.points
        # The repetition period honours both the rate limit and the average
        # power limit; the rate guard enforces it per window as well (SR-7).
        rate_hz = min(self.rate_hz, lim.rate_hz_max)
        self.period_us = max(
            (1_000_000 + rate_hz - 1) // rate_hz,
            (self.pulse_uj * 1000 + lim.avg_power_mw_max - 1) // lim.avg_power_mw_max,
        )
        return None


def parse_phase(words, lim):
    """Build a Phase from `key=value` words. Returns (phase, None) or
    (None, error text naming the field and, where it applies, the limit)."""
    try:
        kv = pairs(words)
    except ValueError as e:
        return None, "bad word " + str(e)
    mode = kv.get("mode")
    if mode not in MODES:
        return None, "mode must be scan or point"
    ph = Phase()
    ph.mode = MODES.index(mode)
    for name in kv:
        if name != "mode" and name not in FIELDS:
            return None, "unknown field " + name
    for name, (attr, decimals, modes) in FIELDS.items():
        if ph.mode not in modes:
            if name in kv:
                return None, name + " not used in " + mode
            continue
        if name not in kv:
            return None, "missing " + name
        try:
            setattr(ph, attr, fixed(kv[name], decimals))
        except ValueError:
            return None, "bad number %s=%s" % (name, kv[name])
    return ph, check(ph, lim)


def check(ph, lim):
    """Every field against the hard limits; the first breach, or None."""
    if ph.power_w < 1:
        return under("power_w", ph.power_w, 1)
    if ph.power_w > lim.power_w_max:
        return over("power_w", ph.power_w, lim.power_w_max)
    if ph.width_us < lim.width_us_min:
        return under("width_us", ph.width_us, lim.width_us_min)
    if ph.width_us > lim.width_us_max:
        return over("width_us", ph.width_us, lim.width_us_max)
    if ph.rate_hz < lim.rate_hz_min:
        return under("rate_hz", ph.rate_hz, lim.rate_hz_min)
    if ph.rate_hz > lim.rate_hz_max:
        return over("rate_hz", ph.rate_hz, lim.rate_hz_max)
    if ph.energy_mj > lim.session_j_max * 1000:
        return over("energy_j", ph.energy_mj // 1000, lim.session_j_max)
    if ph.mode == SCAN:
        if ph.spacing_um < lim.spacing_um_min:
            return under("spacing_mm(um)", ph.spacing_um, lim.spacing_um_min)
        if ph.spacing_um > lim.spacing_um_max:
            return over("spacing_mm(um)", ph.spacing_um, lim.spacing_um_max)
        if not 0 < ph.speed_min_mm_s < ph.speed_max_mm_s:
            return "speed_min_mm_s must be above 0 and below speed_max_mm_s"
    else:
        if ph.points < 1:
            return under("points", ph.points, 1)
        if ph.points > MAX_POINTS:
            return over("points", ph.points, MAX_POINTS)
        if ph.tol_um > lim.point_tol_um_max:
            return over("tol_mm(um)", ph.tol_um, lim.point_tol_um_max)
    return ph.derive(lim)


class Program:
    """Phases uploaded with PCLR / PADD / PEND. Valid only after PEND has
    checked the count and the session total against the hard cap."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.phases = []
        self.valid = False
        self.crc = 0  # CRC-32 of the phase lines as received: the program's identity

    def add(self, phase, text):
        if self.valid:
            return "program closed: PCLR first"
        if len(self.phases) >= MAX_PHASES:
            return over("phases", len(self.phases) + 1, MAX_PHASES)
        self.phases.append(phase)
        self.crc = crc32(text + "\n", self.crc)
        return None

    def close(self, count, lim):
        if self.valid:
            return "program already closed"
        if count != len(self.phases) or not count:
            return "phase count %d, received %d" % (count, len(self.phases))
        total_uj = self.total_uj()
        if total_uj > lim.session_j_max * 1_000_000:
            return over("session energy_j", total_uj // 1_000_000, lim.session_j_max)
        self.valid = True
        return None

    def total_uj(self):
        """Energy the program can deliver, in whole pulses (nominal)."""
        return sum(ph.pulses_max * ph.pulse_uj for ph in self.phases)

    def total_mj(self):
        return self.total_uj() // 1000


def crc32(data, crc=0):
    """CRC-32 (IEEE 802.3, as zlib.crc32) over bytes or str: the program's
    identity. Pass the previous result as `crc` to continue over several
    pieces. Worked on two 16-bit halves, so the loop stays in small ints on
    32-bit ports."""
    hi = (crc >> 16) ^ 0xFFFF
    lo = (crc & 0xFFFF) ^ 0xFFFF
    for b in data if isinstance(data, (bytes, bytearray)) else data.encode():
        lo ^= b
        for _ in range(8):
            carry = lo & 1
            lo = (lo >> 1) | ((hi & 1) << 15)
            hi >>= 1
            if carry:
                hi ^= 0xEDB8
                lo ^= 0x8320
    return ((hi ^ 0xFFFF) << 16) | (lo ^ 0xFFFF)
