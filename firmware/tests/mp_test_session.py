# Session persistence: write-ahead reservations and torn writes (SR-14).
from fakes import MemStore
from session import RESERVE_AHEAD, Session


def fire(s, n, pulses_max):
    """Deliver n pulses the way the controller does: reserve ahead, then fire."""
    for _ in range(n):
        if s.need_reserve(pulses_max):
            s.reserve(pulses_max)
        assert s.may_fire(pulses_max)
        s.done[s.phase] += 1


def test_blank_store_is_a_fresh_closed_session():
    s = Session(MemStore())
    assert s.load() and s.closed and not s.restored


def test_no_pulse_without_a_reservation():
    s = Session(MemStore())
    s.begin(0x1234)
    assert not s.may_fire(100)
    s.reserve(100)
    assert s.may_fire(100)


def test_reboot_restores_at_least_what_was_delivered():
    store = MemStore()
    s = Session(store)
    s.begin(0xBEEF)
    fire(s, 37, 1000)
    t = Session(store)
    assert t.load() and t.restored and t.matches(0xBEEF)
    assert 37 <= t.done[0] <= 37 + RESERVE_AHEAD
    assert not t.matches(0xBEEF + 1)


def test_reservation_never_passes_the_phase_count():
    s = Session(MemStore())
    s.begin(1)
    fire(s, 20, 20)
    assert s.reserved[0] == 20 and not s.may_fire(20)


def test_torn_write_keeps_the_previous_reservation():
    store = MemStore()
    s = Session(store)
    s.begin(7)
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
    s.begin(7)
    s.reserve(100)
    store.blocks = [b"\x01" * len(store.blocks[0]), b"\x02" * len(store.blocks[1])]
    assert not Session(store).load()


def test_closed_session_does_not_resume():
    store = MemStore()
    s = Session(store)
    s.begin(9)
    fire(s, 5, 10)
    s.close()
    t = Session(store)
    t.load()
    assert t.closed and not t.matches(9)
