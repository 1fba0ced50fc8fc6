# Session persistence: write-ahead reservations and torn writes (SR-14).
from fakes import MemStore
from session import RESERVE_AHEAD, Session


class Prog:
    """The parts of a Program a session looks at."""

    def __init__(self, crc, *pulses_max, pulse_uj=360000):
        self.crc = crc
        self.phases = [Ph(n, pulse_uj) for n in pulses_max]


class Ph:
    def __init__(self, pulses_max, pulse_uj):
        self.pulses_max = pulses_max
        self.pulse_uj = pulse_uj


def new(store):
    """A session read from `store`, as the controller's boot does."""
    s = Session(store)
    assert s.load()
    return s


def fire(s, n, pulses_max):
    """Deliver n pulses the way the controller does: reserve ahead, then fire."""
    for _ in range(n):
        if s.need_reserve(pulses_max):
            s.reserve(pulses_max)
        assert s.may_fire(pulses_max)
        s.done[s.phase] += 1


def test_blank_store_is_a_fresh_closed_session():
    s = Session(MemStore())
    assert s.load() and s.closed


def test_no_pulse_without_a_reservation():
    s = new(MemStore())
    s.begin(Prog(0x1234, 100))
    assert not s.may_fire(100)
    s.reserve(100)
    assert s.may_fire(100)


def test_reboot_restores_at_least_what_was_delivered():
    store = MemStore()
    s = new(store)
    s.begin(Prog(0xBEEF, 1000))
    fire(s, 37, 1000)
    t = Session(store)
    assert t.load() and not t.closed and t.matches(Prog(0xBEEF, 1000))
    assert 37 <= t.done[0] <= 37 + RESERVE_AHEAD
    assert not t.matches(Prog(0xBEEF + 1, 1000))  # another program
    assert not t.matches(Prog(0xBEEF, 1000, 5))  # another shape
    assert not t.matches(Prog(0xBEEF, 20))  # counts that do not fit it


def test_reservation_never_passes_the_phase_count():
    s = new(MemStore())
    s.begin(Prog(1, 20))
    fire(s, 20, 20)
    assert s.reserved[0] == 20 and not s.may_fire(20)


def test_torn_write_keeps_the_previous_reservation():
    store = MemStore()
    s = new(store)
    s.begin(Prog(7, 1000))
    fire(s, 30, 1000)
    before = s.reserved[0]
    store.tear = True
    try:
        s.reserve(1000)
    except OSError:
        pass
    t = Session(store)
    assert t.load(), "one slot must survive a torn write"
    assert t.done[0] == before and t.done[0] >= 30


def test_both_slots_corrupt_is_unreadable():
    store = MemStore()
    s = new(store)
    s.begin(Prog(7, 100))
    s.reserve(100)
    store.blocks = [b"\x01" * len(store.blocks[0]), b"\x02" * len(store.blocks[1])]
    assert not Session(store).load()


def test_closed_session_does_not_resume():
    store = MemStore()
    s = new(store)
    s.begin(Prog(9, 10))
    fire(s, 5, 10)
    s.close()
    t = Session(store)
    t.load()
    assert t.closed and not t.matches(Prog(9, 10))


def test_zeroed_slots_are_corrupt_not_blank():
    store = MemStore()
    s = new(store)
    s.begin(Prog(3, 100))
    s.reserve(100)
    store.blocks = [bytes(len(store.blocks[0])), bytes(len(store.blocks[0]))]
    assert not Session(store).load()


def open_session(store, n=37):
    s = new(store)
    s.begin(Prog(0xBEEF, 1000))
    fire(s, n, 1000)
    return s


def test_an_unread_store_cannot_be_overwritten_by_a_new_session():
    store = MemStore()
    open_session(store)
    slots = list(store.blocks)
    t = Session(store)  # not loaded: a boot that latched a fault first
    assert not t.begin(Prog(0xBEEF, 1000)), "a session began over one that may be open"
    assert store.blocks == slots
    assert t.load() and not t.may_begin() and t.matches(Prog(0xBEEF, 1000))


def test_an_open_session_cannot_be_begun_over():
    store = MemStore()
    open_session(store)
    t = new(store)
    assert not t.begin(Prog(0xF00D, 50))
    t.close()  # NEWSESSION
    assert t.begin(Prog(0xF00D, 50))


def test_newsession_over_an_unreadable_store_makes_it_known():
    store = MemStore()
    open_session(store)
    store.blocks = [b"\x01" * 128, b"\x02" * 128]
    t = Session(store)
    assert not t.load() and not t.may_begin()
    t.close()  # NEWSESSION: the operator's decision
    u = new(store)
    assert u.closed and u.begin(Prog(1, 10))


def test_a_first_write_torn_is_unreadable_not_blank():
    store = MemStore()
    s = new(store)
    store.tear = True
    try:
        s.begin(Prog(7, 100))
    except OSError:
        pass
    assert store.blocks[0] is None and store.blocks[1] is not None
    assert not Session(store).load()


def test_an_erased_slot_beside_a_corrupt_one_is_unreadable():
    store = MemStore()
    open_session(store)
    store.blocks = [b"\xff" * 128, b"\x00" * 64]  # erased, and short
    assert not Session(store).load()


def test_another_pulse_energy_is_another_program():
    store = MemStore()
    open_session(store)
    t = new(store)
    assert t.matches(Prog(0xBEEF, 1000))
    assert not t.matches(Prog(0xBEEF, 1000, pulse_uj=300000))


def test_a_slot_of_the_old_format_is_corrupt():
    import struct
    from session import crc16

    body = struct.pack("<HIHBBB8I", 0x4853, 5, 0x1234, 1, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0)
    old = body + struct.pack("<H", crc16(body, len(body)))
    store = MemStore()
    store.blocks = [None, old + b"\xff" * (128 - len(old))]
    assert not Session(store).load()


def test_a_completed_session_does_not_begin_again_until_released():
    """A host that missed the end (a reset at the closing write) uploads the
    same program again: no second dose without NEWSESSION (SR-14, SR-6)."""
    store = MemStore()
    s = new(store)
    assert s.begin(Prog(0xBEEF, 20))
    fire(s, 20, 20)
    s.close()  # the last phase done
    t = new(store)
    assert t.closed and t.completed(Prog(0xBEEF, 20))
    slots = list(store.blocks)
    assert not t.begin(Prog(0xBEEF, 20)), "the same program began a second session"
    assert store.blocks == slots
    assert t.begin(Prog(0xCAFE, 20))  # another program: a new treatment
    t.close()
    u = new(store)
    assert not u.begin(Prog(0xCAFE, 20))
    u.release()  # NEWSESSION: the operator's decision
    v = new(store)
    assert v.closed and not v.completed(Prog(0xCAFE, 20)) and v.begin(Prog(0xCAFE, 20))


def test_slot_crc_is_crc16_ccitt_false():
    """The slot check is the catalogued CRC-16/CCITT-FALSE (check value
    0x29B1), so slots written by any firmware of this format stay readable;
    every bit of every byte counts."""
    from session import crc16

    assert crc16(b"123456789", 9) == 0x29B1
    assert crc16(b"123456789xyz", 9) == 0x29B1  # only data[:n]
    assert crc16(b"", 0) == 0xFFFF
    data = bytearray(b"\x00" * 77)
    seen = {crc16(data, 77)}
    for k in range(77):
        for bit in range(8):
            data[k] ^= 1 << bit
            seen.add(crc16(data, 77))
            data[k] ^= 1 << bit
    assert len(seen) == 1 + 77 * 8  # a CRC-16 tells every single-bit error apart here
