# Session persistence: write-ahead reservations and torn writes (SR-14).
from fakes import MemStore
from session import RESERVE_AHEAD, Session


class Prog:
    """The parts of a Program a session looks at."""

    def __init__(self, crc, *pulses_max):
        self.crc = crc
        self.phases = [Ph(n) for n in pulses_max]


class Ph:
    def __init__(self, pulses_max):
        self.pulses_max = pulses_max


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
    s = Session(MemStore())
    s.begin(Prog(0x1234, 100))
    assert not s.may_fire(100)
    s.reserve(100)
    assert s.may_fire(100)


def test_reboot_restores_at_least_what_was_delivered():
    store = MemStore()
    s = Session(store)
    s.begin(Prog(0xBEEF, 1000))
    fire(s, 37, 1000)
    t = Session(store)
    assert t.load() and not t.closed and t.matches(Prog(0xBEEF, 1000))
    assert 37 <= t.done[0] <= 37 + RESERVE_AHEAD
    assert not t.matches(Prog(0xBEEF + 1, 1000))  # another program
    assert not t.matches(Prog(0xBEEF, 1000, 5))  # another shape
    assert not t.matches(Prog(0xBEEF, 20))  # counts that do not fit it


def test_reservation_never_passes_the_phase_count():
    s = Session(MemStore())
    s.begin(Prog(1, 20))
    fire(s, 20, 20)
    assert s.reserved[0] == 20 and not s.may_fire(20)


def test_torn_write_keeps_the_previous_reservation():
    store = MemStore()
    s = Session(store)
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
    s = Session(store)
    s.begin(Prog(7, 100))
    s.reserve(100)
    store.blocks = [b"\x01" * len(store.blocks[0]), b"\x02" * len(store.blocks[1])]
    assert not Session(store).load()


def test_closed_session_does_not_resume():
    store = MemStore()
    s = Session(store)
    s.begin(Prog(9, 10))
    fire(s, 5, 10)
    s.close()
    t = Session(store)
    t.load()
    assert t.closed and not t.matches(Prog(9, 10))


def test_zeroed_slots_are_corrupt_not_blank():
    store = MemStore()
    s = Session(store)
    s.begin(Prog(3, 100))
    s.reserve(100)
    store.blocks = [bytes(len(store.blocks[0])), bytes(len(store.blocks[0]))]
    assert not Session(store).load()
