"""Session progress and its persistence (SR-6, SR-14).

Dose is counted in pulses per phase. The store always holds a reservation that
is at least what was delivered: before pulse k may be armed, the store must say
k or more (write-ahead, RESERVE_AHEAD pulses at a time, written from the main
loop with no pulse armed). After a reset the device takes every reserved pulse
as delivered, so a reboot can only under-treat, by at most RESERVE_AHEAD
pulses, never over-treat.

Two store slots, each: magic (the format version), sequence, program CRC-32,
phase count, phase, closed flag, the per-phase reservations and pulse
energies, then a CRC-16 of all that. A write goes to the older slot, so a write
torn by a reset leaves the newer one whole. A slot the store never wrote reads
as None; any other content that fails its check (short, zeroed, erased,
another format) is corrupt. The store is blank only when neither slot was ever
written; if no slot is whole otherwise, it is unreadable (F09).

Until load() has read the store, the session is unknown, not closed: nothing
can begin a session over one that may be open (only NEWSESSION, the operator's
decision, closes an unknown session).
"""
from micropython import const
import struct

from program import MAX_PHASES

RESERVE_AHEAD = const(16)
_MAGIC = const(0x4832)  # "H2": format 2 (CRC-32 identity, pulse energies)
_HEAD = "<HIIBBB"  # magic, seq, program crc32, phase count, phase, closed
_RES = const(13)  # offset of reserved[MAX_PHASES], 4 bytes each
_UJ = const(45)  # offset of pulse_uj[MAX_PHASES], 4 bytes each
_SIZE = const(77)  # the record; its CRC-16 follows


class Session:
    def __init__(self, store):
        self.store = store
        self.loaded = False  # the store has been read (or NEWSESSION closed the session)
        self.seq = 0
        self.program_crc = 0
        self.n_phases = 0
        self.closed = True
        self.phase = 0
        self.done = [0] * MAX_PHASES  # pulses delivered, per phase
        self.reserved = [0] * MAX_PHASES  # pulses the store allows, per phase
        self.pulse_uj = [0] * MAX_PHASES  # the program's pulse energy, per phase
        self._buf = bytearray(_SIZE + 2)  # a slot image, built without allocating

    def load(self):
        """Read the newest whole slot. Returns False if the store was written
        but no slot is whole (unreadable: the count is unknown)."""
        best = None
        written = False
        for slot in (0, 1):
            data = self.store.read(slot)
            if data is None:
                continue  # never written
            written = True
            rec = _decode(data)
            if rec is not None and (best is None or rec[1] > best[1]):
                best = rec
        if best is None:
            self.loaded = not written  # a blank store: no session, closed
            return self.loaded
        self.seq, self.program_crc, self.n_phases, self.phase, closed = best[1:6]
        self.closed = bool(closed)
        for i in range(MAX_PHASES):
            self.reserved[i] = self.done[i] = best[6 + i]
            self.pulse_uj[i] = best[6 + MAX_PHASES + i]
        self.loaded = True
        return True

    def matches(self, program):
        """The open session is this program's (same identity, same shape, same
        pulse energies, counts that fit it): it resumes, it does not restart."""
        phases = program.phases
        if not self.loaded or self.closed:
            return False
        if self.program_crc != program.crc or self.n_phases != len(phases) or self.phase >= len(phases):
            return False
        for i in range(len(phases)):
            if self.pulse_uj[i] != phases[i].pulse_uj or self.reserved[i] > phases[i].pulses_max:
                return False
        return True

    def may_begin(self):
        """A new session may start only over a known, closed one."""
        return self.loaded and self.closed

    def completed(self, program):
        """The closed session in the store is `program`'s own, ended by its
        last phase and not yet released by NEWSESSION. A host that missed its
        end (a reset at the closing write, or just after it) uploads the same
        program again: that must not begin a second dose."""
        return (self.loaded and self.closed and self.program_crc == program.crc
                and self.n_phases == len(program.phases))

    def begin(self, program):
        """Start a session of `program`. Returns False, changing nothing, if
        the session in the store is open or unknown, or is this program's
        completed one (NEWSESSION releases it)."""
        if not self.may_begin() or self.completed(program):
            return False
        self.program_crc = program.crc
        self.n_phases = len(program.phases)
        self.closed = False
        self.phase = 0
        for i in range(MAX_PHASES):
            self.done[i] = self.reserved[i] = 0
            self.pulse_uj[i] = program.phases[i].pulse_uj if i < self.n_phases else 0
        self._save()
        return True

    def close(self):
        """End the session (its last phase done, or NEWSESSION): from here the
        state is known, whatever the store held."""
        self.closed = True
        self.loaded = True
        self._save()

    def release(self):
        """NEWSESSION, the operator's decision: the session is closed and
        belongs to no program, so any program, the same one too, may begin."""
        self.program_crc = 0
        self.n_phases = 0
        self.close()

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
        """Write the session to the older slot. Allocation-free up to the
        store's own write: it runs in emit() between pulses."""
        self.seq += 1
        buf = self._buf
        struct.pack_into(_HEAD, buf, 0, _MAGIC, self.seq, self.program_crc, self.n_phases, self.phase,
                         1 if self.closed else 0)
        for i in range(MAX_PHASES):
            struct.pack_into("<I", buf, _RES + 4 * i, self.reserved[i])
            struct.pack_into("<I", buf, _UJ + 4 * i, self.pulse_uj[i])
        struct.pack_into("<H", buf, _SIZE, crc16(buf, _SIZE))
        self.store.write(self.seq & 1, buf)


# CRC-16/CCITT-FALSE (polynomial 0x1021) of each 4-bit value shifted out of
# the top: the carry-less product nibble x 0x1021, which never overlaps.
_CRC_NIBBLE = (0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
               0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF)


def crc16(data, n):
    """CRC-16/CCITT-FALSE of data[:n] (slot integrity). Allocation-free.
    Four bits a step from a 16-entry table: it runs in emit() at every
    reservation, where bit by bit took a few ms on an RP2040."""
    crc = 0xFFFF
    t = _CRC_NIBBLE
    for k in range(n):
        crc ^= data[k] << 8
        crc = (crc << 4) & 0xFFFF ^ t[crc >> 12]
        crc = (crc << 4) & 0xFFFF ^ t[crc >> 12]
    return crc


def _decode(data):
    """The unpacked slot (magic, seq, crc, phases, phase, closed, reserved[8],
    pulse_uj[8]), or None if it is not a whole slot of this format."""
    if len(data) < _SIZE + 2:
        return None
    if data[_SIZE] | data[_SIZE + 1] << 8 != crc16(data, _SIZE):
        return None
    rec = struct.unpack(_HEAD + "%dI" % (2 * MAX_PHASES), data[:_SIZE])
    return rec if rec[0] == _MAGIC else None
