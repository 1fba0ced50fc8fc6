# Asymmetric debounce: towards danger at once, towards emission only when steady (SR-3).
import interlocks as il
from fakes import FakeBoard


def test_opening_is_taken_at_once():
    b = FakeBoard(0x3F)
    inp = il.Inputs(b, 20)
    b.inputs.bits = 0x3F & ~il.DOOR
    b.t = 1
    assert not inp.update(b.t) & il.DOOR


def test_closing_waits_for_the_debounce_time():
    b = FakeBoard(0x3F & ~il.DOOR)
    inp = il.Inputs(b, 20)
    b.inputs.bits = 0x3F
    for t in (1000, 10000, 19999):
        b.t = t
        assert not inp.update(t) & il.DOOR, t
    b.t = 21000
    assert inp.update(b.t) & il.DOOR


def test_bounce_restarts_the_debounce():
    b = FakeBoard(0x3F)
    inp = il.Inputs(b, 20)
    for t, foot in ((0, 1), (5000, 0), (6000, 1), (22000, 1), (26500, 1)):
        b.inputs.bits = 0x3F | (il.FOOT if foot else 0)
        b.t = t
        got = inp.update(t) & il.FOOT
    assert got  # steady since 6 ms, 20.5 ms later
    b.t = 6000
    b2 = FakeBoard(0x3F)
    inp2 = il.Inputs(b2, 20)
    for t, foot in ((0, 1), (15000, 0), (16000, 1), (30000, 1)):
        b2.inputs.bits = 0x3F | (il.FOOT if foot else 0)
        assert not inp2.update(t) & il.FOOT, t  # 30 ms total, but only 14 ms steady


def test_open_names():
    assert il.open_names(0x3F) == ""
    assert il.open_names(0x3F & ~il.DOOR & ~il.TEMP) == "door,temp"
