"""Pulse pacing: when and where the next pulse may fire (SR-7, SR-8, SR-9).

The pacer never fires anything. It tells the board "one pulse, not before
time T, when the encoder reaches count C moving in direction D", and the board
fires it with hardware timing (a compare on real boards, an exact crossing
time on the simulated one). So the loop only has to re-arm between pulses.

Scan: one pulse per `spacing` of path. Path is the distance travelled, so
back-and-forth sweeps count; a reversal is believed only once the position has
moved `deadband` counts back (glitch and tremor filter); a grid point that
falls inside the stretch a turn confirms fires then, late by at most the
deadband plus one loop period of travel (never early). A pulse that fires
late because of the rate limit starts the grid again from where it fired:
spacing never shrinks, and the extra travel is reported as under-dosed.

One pacer per mode behind one interface (aim, fired, moved), chosen by the
phase when a step starts: scan (the distance grid) and trigger point (time
only, within a tolerance of the point's anchor). The Pacer holds what every
mode shares: the limits below, the pulse history, the hand's motion, the
phase's tallies, and the step's start (the grid's and the point's). A new
mode is its functions here and a row of MODES (in program.MODES order).

Limits on every pulse, whatever the program or the hand:
- rate: at least `period_us` between pulses, and no more pulses in any
  avg_window_ms than the average power limit allows (a sliding window);
- dwell: the energy that landed within 5 mm either side of the next pulse in
  the last dwell_window_ms, plus that pulse, stays within the dwell limit;
  a grid point that would break it is skipped (counted in `skips`).

Time: ticks wrap (every 1074 s on a 30-bit port), so no stored tick is ever
compared with one more than a window old: `elapse()` adds up loop time and
forgets the pulse history once it is older than its window.

Everything called per loop or per pulse (elapse, track, plan, fired) is
integer-only and allocation-free (tested under micropython.heap_lock()).
"""
from array import array
from micropython import const
import micropython
import time

_RING = const(64)  # pulse times kept for the average-power window
_DWELL_MAX = const(512)  # largest dwell ring: pulses in one dwell window at the top rate
_SPEED_SAMPLE_US = const(20_000)
_QUIET_CAP_US = const(0x10000000)  # stop counting quiet time here (small int)
_TICK_MASK = const(0x3FFFFFFF)  # ticks.MASK, a literal for the viper walk
_TICK_HALF = const(0x20000000)
_UJ_MAX = const(0x3FFFFFFF)  # energies the viper walk adds up stay machine words
# a mode's pacer: a row of MODES (at the end) holds its functions in this order
_AIM = const(0)
_FIRED = const(1)
_MOVED = const(2)


class Pacer:
    def __init__(self, lim, counts_per_mm, deadband_counts):
        # The dwell ring holds every pulse one dwell window can hold at the
        # top rate (pulses are at least 1/rate_hz_max apart), one spare, no more.
        n = lim.rate_hz_max * lim.dwell_window_ms // 1000
        if n > _DWELL_MAX:
            raise ValueError("dwell ring %d < rate_hz_max x dwell_window" % _DWELL_MAX)
        if lim.dwell_mj_per_cm_max * 1000 > _UJ_MAX or lim.power_w_max * lim.width_us_max > _UJ_MAX:
            raise ValueError("dwell limit or pulse energy over %d uJ" % _UJ_MAX)
        n += 1
        self.lim = lim
        self.counts_per_mm = counts_per_mm
        self.deadband_counts = deadband_counts
        self._half_cm_counts = counts_per_mm * 5
        self._avg_window_us = lim.avg_window_ms * 1000
        self._dwell_window_us = lim.dwell_window_ms * 1000
        self._dwell_max_uj = lim.dwell_mj_per_cm_max * 1000
        # pulse history: times for the rate window, (time, count, energy) for dwell
        self._times_us = array("i", bytes(4 * _RING))
        self._n_times = 0
        self._head = 0
        self._dw_size = n
        self._dwell = array("i", bytes(12 * n))  # pulse k: [3k] time, [3k+1] count, [3k+2] energy
        self._dw_head = 0
        self._dw_n = 0
        self._dw_uj = 0  # energy of every pulse in the dwell ring, wherever and whenever it landed
        self._last_us = 0
        self._fired_any = False
        self._quiet_us = 0  # time since the last pulse, added up by elapse()
        # motion
        self.pos_count = 0
        self.dir = 0
        self._ext_count = 0
        self.path_counts = 0
        self._confirmed_counts = 0  # path a turn confirmed in this track() call
        self.speed_mm_s = 0
        self._sp_us = 0
        self._sp_path_counts = 0
        # phase
        self.mode = MODES[0]  # type: tuple  # the mode's pacer (scan until start() chooses)
        self._spacing_counts = 0
        self.period_us = 0
        self.pulse_uj = 0
        self._per_window = 0
        self._tol_counts = 0
        self._anchor_count = 0
        self.next_path_counts = 0
        self.under_counts = 0
        self.skips = 0
        # the arm request filled in by plan()
        self.not_before_us = 0
        self.target_count = 0

    # -- phase and motion

    def new_phase(self):
        """Reset the per-phase tallies (under-dosed travel, skipped points)."""
        self.under_counts = 0
        self.skips = 0

    def start(self, phase, pos_count, new_point):
        """Begin (or resume) pacing a phase from where the hand is now. A
        trigger point keeps its anchor through a pause unless `new_point`."""
        self.mode = MODES[phase.mode]
        self._spacing_counts = max(1, (phase.spacing_um * self.counts_per_mm + 500) // 1000)
        self.period_us = phase.period_us
        self.pulse_uj = phase.pulse_uj
        n = self.lim.avg_power_mw_max * self.lim.avg_window_ms // phase.pulse_uj
        self._per_window = max(1, min(_RING, n))
        self._tol_counts = phase.tol_um * self.counts_per_mm // 1000
        if new_point:
            self._anchor_count = pos_count
        self.pos_count = self._ext_count = pos_count
        self.dir = 0
        self.next_path_counts = self.path_counts + self._spacing_counts
        self._sp_us = 0
        self._sp_path_counts = self.path_counts

    def elapse(self, delta_us):
        """Add one loop's time; forget pulse history older than its window."""
        t = self._quiet_us + delta_us
        self._quiet_us = t if t < _QUIET_CAP_US else _QUIET_CAP_US
        if self._quiet_us >= self._avg_window_us:
            self._n_times = 0
            self._fired_any = False
        if self._quiet_us >= self._dwell_window_us:
            self._dw_n = 0
            self._dw_uj = 0
        self._sp_us += delta_us

    def track(self, pos):
        """Follow the encoder. Returns True when the direction changed, so the
        caller re-arms towards the new direction."""
        self.pos_count = pos
        self._confirmed_counts = 0
        turned = False
        ext = self._ext_count
        if self.dir >= 0 and pos > ext:
            self.path_counts += pos - ext
            self._ext_count = pos
            turned = self.dir == 0
            self.dir = 1
        elif self.dir <= 0 and pos < ext:
            self.path_counts += ext - pos
            self._ext_count = pos
            turned = self.dir == 0
            self.dir = -1
        elif (ext - pos) * self.dir >= self.deadband_counts:
            self._confirmed_counts = (ext - pos) * self.dir
            self.path_counts += self._confirmed_counts
            self._ext_count = pos
            self.dir = -self.dir
            turned = True
        if self._sp_us >= _SPEED_SAMPLE_US:
            d = self.path_counts - self._sp_path_counts
            self.speed_mm_s = d * 1000 // ((self._sp_us // 1000) * self.counts_per_mm)
            self._sp_us = 0
            self._sp_path_counts = self.path_counts
        return turned

    def point_offset(self):
        """Trigger point: counts the hand moved since the point started."""
        return self.pos_count - self._anchor_count

    def point_moved(self):
        """The hand left the step's place: a trigger point's tolerance (SR-9);
        never, for a mode that paces by distance."""
        return self.mode[_MOVED](self)

    # -- pulses

    def plan(self, now):
        """Decide the next arm request into not_before_us/target_count:
        the time here, the place by the mode's pacer. Returns False when no
        pulse may be armed now."""
        nb = now
        if self._fired_any:
            nb = time.ticks_add(self._last_us, self.period_us)
            if self._n_times >= self._per_window:
                oldest = self._times_us[(self._head - self._per_window) % _RING]
                t = time.ticks_add(oldest, self._avg_window_us)
                if time.ticks_diff(t, nb) > 0:
                    nb = t
            if time.ticks_diff(nb, now) < 0:
                nb = now
        self.not_before_us = nb
        return self.mode[_AIM](self, now)

    def _dwell_ok(self, now, target):
        room_uj = self._dwell_max_uj - self.pulse_uj  # what the 1 cm may still take
        if self._dw_uj <= room_uj:
            return True  # the whole ring is within the limit, so any part of it is
        if room_uj < 0:
            return False  # this pulse alone is over the limit
        return _near_within(self, now, target, room_uj)

    def fired(self, t_us, pos):
        """Account a pulse the board fired at time t_us and count pos."""
        self._last_us = t_us
        self._fired_any = True
        self._quiet_us = 0
        self._times_us[self._head] = t_us
        self._head = (self._head + 1) % _RING
        if self._n_times < _RING:
            self._n_times += 1
        i = self._dw_head
        j = 3 * i
        if self._dw_n == self._dw_size:
            self._dw_uj -= self._dwell[j + 2]  # the oldest pulse, overwritten here
        self._dwell[j] = t_us
        self._dwell[j + 1] = pos
        self._dwell[j + 2] = self.pulse_uj
        self._dw_uj += self.pulse_uj
        self._dw_head = (i + 1) % self._dw_size
        if self._dw_n < self._dw_size:
            self._dw_n += 1
        self.mode[_FIRED](self, pos)


@micropython.viper
def _near_within(p, now: int, target: int, room_uj: int) -> bool:
    """Whether the energy that landed within 5 mm of `target` in the last dwell
    window is at most room_uj (0 <= room_uj < 2**30). The walk runs once per
    pulse in the window (400 at most): viper, as bytecode it took ~25 us a
    pulse on the RP2040, a 10 ms control step. Viper ints are machine words
    (32 or 64 bits), so the tick wrap is done here on 30 bits like ticks.diff,
    and the ring's counts, read as 32 bits, are sign-extended."""
    ring = ptr32(p._dwell)  # noqa: F821 - a viper builtin
    size = int(p._dw_size)
    n = int(p._dw_n)
    i = int(p._dw_head)
    window_us = int(p._dwell_window_us)
    half = int(p._half_cm_counts)
    lo = target - half
    hi = target + half
    sign = 1
    sign <<= 31  # the 32-bit sign bit; shifted out again on a 32-bit port
    total_uj = 0
    while n > 0:
        n -= 1
        i -= 1
        if i < 0:
            i = size - 1
        j = 3 * i
        if ((now - ring[j] + _TICK_HALF) & _TICK_MASK) - _TICK_HALF >= window_us:
            break  # this pulse and every older one left the window
        c = ring[j + 1]
        c -= (c & sign) << 1
        if c >= lo and c <= hi:
            e = ring[j + 2]
            if e > room_uj - total_uj:
                return False
            total_uj += e
    return True


# -- one pacer per mode: (aim, fired, moved), functions of the Pacer `p`.
# Module functions, not a class per mode: a class or a function costs heap.
# aim(p, now) -> False when no pulse now, else sets p.target_count;
# fired(p, pos): the mode's accounting of a fired pulse;
# moved(p) -> True when the hand left the step's place.


def _scan_aim(p, now):
    """Scan: the next point of the distance grid ahead of the hand (SR-8)."""
    if p.dir == 0:
        return False  # still: no pulse (SR-8)
    late = p.path_counts - p.next_path_counts
    if 0 <= late < p._confirmed_counts:
        # The grid point lay in the stretch a turn has just confirmed
        # (deadband plus one loop of travel): fire here, late, never early.
        p.under_counts += late
        p.next_path_counts = p.path_counts
        p.target_count = p.pos_count
        return p._dwell_ok(now, p.target_count)
    while p.path_counts >= p.next_path_counts:
        # A grid point went by unarmed (dwell limit, or a turn while a late
        # pulse waited): skip it, never bunch pulses up.
        p.next_path_counts += p._spacing_counts
        p.skips += 1
    p.target_count = p._ext_count + p.dir * (p.next_path_counts - p.path_counts)
    return p._dwell_ok(now, p.target_count)


def _scan_fired(p, pos):
    """A late pulse restarts the grid from where it fired: spacing never shrinks."""
    late = (pos - p.target_count) * p.dir
    if late > 0:
        p.under_counts += late
    else:
        late = 0
    p.next_path_counts += p._spacing_counts + late


def _point_aim(p, now):
    """Trigger point: by time only, where the hand is."""
    p.target_count = p.pos_count
    return True


def _nothing(p, pos=0):
    """A mode's fired() or moved() with nothing to do (a scan has no place to leave)."""
    return False


def _point_moved(p):
    """The hand left the point's tolerance, either way (SR-9)."""
    d = p.pos_count - p._anchor_count
    return d > p._tol_counts or -d > p._tol_counts


# by program mode (program.SCAN, program.POINT)
MODES = (
    (_scan_aim, _scan_fired, _nothing),
    (_point_aim, _nothing, _point_moved),
)
