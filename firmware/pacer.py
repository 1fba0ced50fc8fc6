"""Pulse pacing: when and where the next pulse may fire (SR-7, SR-8, SR-9).

The pacer never fires anything. It tells the board "one pulse, not before
time T, when the encoder reaches count C moving in direction D", and the board
fires it with hardware timing (a compare on real boards, an exact crossing
time on the simulated one). So the loop only has to re-arm between pulses.

Scan: one pulse per `spacing` of path. Path is the distance travelled, so
back-and-forth sweeps count; a reversal is believed only once the position has
moved `deadband` counts back (glitch and tremor filter); a grid point that
falls inside the stretch a turn confirms fires then, late by at most the
deadband plus one loop period of travel (never early). A pulse that fires late because of the rate limit
starts the grid again from where it fired: spacing never shrinks, and the
extra travel is reported as under-dosed.

Limits on every pulse, whatever the program or the hand:
- rate: at least `period_us` between pulses, and no more pulses in any
  avg_window_ms than the average power limit allows (a sliding window);
- dwell: the energy that landed within 5 mm either side of the next pulse in
  the last dwell_window_ms, plus that pulse, stays within the dwell limit.

Everything called per loop or per pulse (track, plan, fired) is integer-only
and allocation-free (tested under micropython.heap_lock()).
"""
from array import array
from micropython import const
import time

from program import SCAN

_RING = const(64)  # pulse times kept for the average-power window
_DWELL = const(512)  # pulses kept for the dwell window (>= rate max x window)
_SPEED_SAMPLE_US = const(20_000)


class Pacer:
    def __init__(self, lim, counts_per_mm, deadband_counts):
        self._lim = lim
        self.cpm = counts_per_mm
        self._deadband = deadband_counts
        self._half_cm = counts_per_mm * 5
        self._avg_window_us = lim.avg_window_ms * 1000
        self._dwell_window_us = lim.dwell_window_ms * 1000
        self._dwell_max_uj = lim.dwell_mj_per_cm_max * 1000
        self._times = array("i", bytes(4 * _RING))
        self._n_times = 0
        self._head = 0
        self._dw_t = array("i", bytes(4 * _DWELL))
        self._dw_pos = array("i", bytes(4 * _DWELL))
        self._dw_uj = array("i", bytes(4 * _DWELL))
        self._dw_head = 0
        self._dw_n = 0
        self._last_t = 0
        self._fired_any = False
        # motion
        self.pos = 0
        self.dir = 0
        self._ext = 0
        self.path = 0
        self._confirmed = 0  # path a turn confirmed in this track() call
        self.speed_mm_s = 0
        self._sp_t = 0
        self._sp_path = 0
        # phase
        self.mode = SCAN
        self._spacing = 0
        self._period_us = 0
        self._pulse_uj = 0
        self._per_window = 0
        self._tol = 0
        self._anchor = 0
        self.next_path = 0
        self.under_counts = 0
        self.skips = 0
        # the arm request filled in by plan()
        self.not_before = 0
        self.target = 0

    # -- phase and motion

    def new_phase(self):
        """Reset the per-phase tallies (under-dosed travel, skipped points)."""
        self.under_counts = 0
        self.skips = 0

    def start(self, phase, now, pos):
        """Begin (or resume) pacing a phase from where the hand is now."""
        self.mode = phase.mode
        self._spacing = max(1, (phase.spacing_um * self.cpm + 500) // 1000)
        self._period_us = phase.period_us
        self._pulse_uj = phase.pulse_uj
        per = self._lim.avg_power_mw_max * self._lim.avg_window_ms // phase.pulse_uj
        self._per_window = max(1, min(_RING, per))
        self._tol = phase.tol_um * self.cpm // 1000
        self._anchor = pos
        self.pos = self._ext = pos
        self.dir = 0
        self.next_path = self.path + self._spacing
        self._sp_t = now
        self._sp_path = self.path

    def track(self, now, pos):
        """Follow the encoder. Returns True when the direction changed, so the
        caller re-arms towards the new direction."""
        self.pos = pos
        self._confirmed = 0
        turned = False
        if self.dir >= 0 and pos > self._ext:
            self.path += pos - self._ext
            self._ext = pos
            turned = self.dir == 0
            self.dir = 1
        elif self.dir <= 0 and pos < self._ext:
            self.path += self._ext - pos
            self._ext = pos
            turned = self.dir == 0
            self.dir = -1
        elif (self._ext - pos) * self.dir >= self._deadband:
            self._confirmed = (self._ext - pos) * self.dir
            self.path += self._confirmed
            self._ext = pos
            self.dir = -self.dir
            turned = True
        dt = time.ticks_diff(now, self._sp_t)
        if dt >= _SPEED_SAMPLE_US:
            self.speed_mm_s = (self.path - self._sp_path) * 1000 // ((dt // 1000) * self.cpm)
            self._sp_t = now
            self._sp_path = self.path
        return turned

    def point_offset(self):
        """Trigger point: counts the hand moved since the point started."""
        return self.pos - self._anchor

    def point_moved(self):
        """The hand left the trigger point's tolerance (SR-9)."""
        d = self.pos - self._anchor
        return d > self._tol or -d > self._tol

    # -- pulses

    def plan(self, now):
        """Decide the next arm request into not_before/target/dir.
        Returns False when no pulse may be armed now."""
        nb = now
        if self._fired_any:
            nb = time.ticks_add(self._last_t, self._period_us)
            if self._n_times >= self._per_window:
                oldest = self._times[(self._head - self._per_window) % _RING]
                nb2 = time.ticks_add(oldest, self._avg_window_us)
                if time.ticks_diff(nb2, nb) > 0:
                    nb = nb2
            if time.ticks_diff(nb, now) < 0:
                nb = now
        self.not_before = nb
        if self.mode != SCAN:
            self.target = self.pos
            return True
        if self.dir == 0:
            return False  # still: no pulse (SR-8)
        late = self.path - self.next_path
        if 0 <= late < self._confirmed:
            # The grid point lay in the stretch a turn has just confirmed
            # (deadband plus one loop of travel): fire here, late, never early.
            self.under_counts += late
            self.next_path = self.path
            self.target = self.pos
            return self._dwell_ok(now, self.target)
        while self.path >= self.next_path:
            # A grid point went by unarmed (dwell limit, or a turn while a late
            # pulse waited): skip it, never bunch pulses up.
            self.next_path += self._spacing
            self.skips += 1
        self.target = self._ext + self.dir * (self.next_path - self.path)
        return self._dwell_ok(now, self.target)

    def _dwell_ok(self, now, target):
        total = self._pulse_uj
        i = self._dw_head
        for _ in range(self._dw_n):
            i = (i - 1) % _DWELL
            if time.ticks_diff(now, self._dw_t[i]) >= self._dwell_window_us:
                break
            d = self._dw_pos[i] - target
            if -self._half_cm <= d <= self._half_cm:
                total += self._dw_uj[i]
        return total <= self._dwell_max_uj

    def fired(self, t, pos):
        """Account a pulse the board fired at time t and count pos."""
        self._last_t = t
        self._fired_any = True
        self._times[self._head] = t
        self._head = (self._head + 1) % _RING
        if self._n_times < _RING:
            self._n_times += 1
        h = self._dw_head
        self._dw_t[h] = t
        self._dw_pos[h] = pos
        self._dw_uj[h] = self._pulse_uj
        self._dw_head = (h + 1) % _DWELL
        if self._dw_n < _DWELL:
            self._dw_n += 1
        if self.mode == SCAN:
            late = (pos - self.target) * self.dir
            if late > 0:
                self.under_counts += late
            else:
                late = 0
            self.next_path += self._spacing + late
