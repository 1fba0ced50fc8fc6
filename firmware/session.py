"""Session progress and its persistence (SR-6, SR-14).

Dose is counted in pulses per phase. The store always holds a reservation that
is at least what was delivered: before pulse k may be armed, the store must say
k or more (write-ahead, RESERVE_AHEAD pulses at a time, written from the main
loop, never from the pulse path). After a reset the device takes every reserved
pulse as delivered, so a reboot can only under-treat, by at most RESERVE_AHEAD
pulses, never over-treat.

Two store slots, each: magic, sequence, program crc, phase count, phase,
closed flag and the per-phase reservations, then a CRC-16. A write goes to the
older slot, so a write torn by a reset leaves the newer one whole. Erased flash
(0xFF) is blank; anything else that fails its CRC is corrupt. One blank slot
beside a corrupt one is a first write torn by a reset: nothing had been
reserved yet, so the store is taken as new.
"""
from micropython import const
import struct

from program import MAX_PHASES, crc16

RESERVE_AHEAD = const(16)
_MAGIC = const(0x4853)  # "HS"
_FMT = "<HIHBBB8I"  # magic, seq, program crc, phase count, phase, closed, reserved[8]
_SIZE = struct.calcsize(_FMT)


class Session:
    def __init__(self, store):
        self._store = store
        self.seq = 0
        self.program_crc = 0
        self.n_phases = 0
        self.closed = True
        self.phase = 0
        self.done = [0] * MAX_PHASES  # pulses delivered, per phase
        self.reserved = [0] * MAX_PHASES  # pulses the store allows, per phase

    def load(self):
        """Read the newest whole slot. Returns False if a slot holds data that
        is neither blank nor valid in both copies (the store is unreadable)."""
        best = None
        bad = 0
        for slot in (0, 1):
            rec = _decode(self._store.read(slot))
            if rec is None:
                bad += 1
            elif rec and (best is None or rec[1] > best[1]):
                best = rec
        if best is None:
            return bad < 2
        _, self.seq, self.program_crc, self.n_phases, self.phase, closed, *res = best
        self.closed = bool(closed)
        for i in range(MAX_PHASES):
            self.reserved[i] = self.done[i] = res[i]
        return True

    def matches(self, program):
        """The open session is this program's (same identity, same shape, counts
        that fit it): it resumes, it does not restart."""
        phases = program.phases
        if self.closed or self.program_crc != program.crc or self.n_phases != len(phases):
            return False
        if self.phase >= len(phases):
            return False
        return all(self.reserved[i] <= phases[i].pulses_max for i in range(len(phases)))

    def begin(self, program):
        self.program_crc = program.crc
        self.n_phases = len(program.phases)
        self.closed = False
        self.phase = 0
        for i in range(MAX_PHASES):
            self.done[i] = self.reserved[i] = 0
        self._save()

    def close(self):
        self.closed = True
        self._save()

    def need_reserve(self, pulses_max):
        """True when the next pulses of this phase are not yet reserved."""
        i = self.phase
        return self.reserved[i] < pulses_max and self.reserved[i] - self.done[i] < RESERVE_AHEAD // 2

    def reserve(self, pulses_max):
        i = self.phase
        self.reserved[i] = min(pulses_max, self.done[i] + RESERVE_AHEAD)
        self._save()

    def may_fire(self, pulses_max):
        """The dose check before every pulse: allocation-free, two compares."""
        i = self.phase
        d = self.done[i]
        return d < pulses_max and d < self.reserved[i]

    def next_phase(self):
        self.phase += 1
        self._save()

    def _save(self):
        self.seq += 1
        body = struct.pack(_FMT, _MAGIC, self.seq, self.program_crc, self.n_phases, self.phase,
                           1 if self.closed else 0, *self.reserved)
        self._store.write(self.seq & 1, body + struct.pack("<H", crc16(body)))


def _blank(data):
    return data is None or all(b == 0xFF for b in data)


def _decode(data):
    """() for a blank slot, None for a corrupt one, else the unpacked tuple."""
    if _blank(data):
        return ()
    if len(data) < _SIZE + 2:
        return None
    body = data[:_SIZE]
    if struct.unpack("<H", data[_SIZE : _SIZE + 2])[0] != crc16(body):
        return None
    rec = struct.unpack(_FMT, body)
    return rec if rec[0] == _MAGIC else None
