# Asymmetric debounce: towards danger at once, towards emission only when steady (SR-3).
import interlocks as il
from fakes import FakeBoard


def test_opening_is_taken_at_once():
    b = FakeBoard(il.INTERLOCKS)
    inp = il.Inputs(b, 20)
    b.inputs.bits = il.INTERLOCKS & ~il.DOOR
    assert not inp.update(1) & il.DOOR


def test_closing_waits_for_the_debounce_time():
    b = FakeBoard(il.INTERLOCKS & ~il.DOOR)
    inp = il.Inputs(b, 20)
    b.inputs.bits = il.INTERLOCKS
    assert not inp.update(1000) & il.DOOR  # the change is seen: steady from here
    for _ in range(9):
        assert not inp.update(2000) & il.DOOR  # 18 ms steady
    assert inp.update(2000) & il.DOOR  # 20 ms


def test_bounce_restarts_the_debounce():
    b = FakeBoard(il.INTERLOCKS)
    inp = il.Inputs(b, 20)
    # (dt since the last sample, footswitch) : pressed 15 ms, bounces, pressed 14 ms
    for dt, foot in ((1000, 1), (15000, 1), (1000, 0), (1000, 1), (14000, 1)):
        b.inputs.bits = il.INTERLOCKS | (il.FOOT if foot else 0)
        assert not inp.update(dt) & il.FOOT, dt  # 31 ms since the first press, 14 ms steady
    b.inputs.bits = il.INTERLOCKS | il.FOOT
    assert inp.update(6000) & il.FOOT  # now 20 ms steady


def test_open_names():
    assert il.open_names(il.INTERLOCKS) == ""
    assert il.open_names(il.INTERLOCKS & ~il.DOOR & ~il.TEMP) == "door,temp"


def test_the_input_table_gives_bits_in_row_order_and_the_interlock_mask():
    for i, (name, bit, _, _) in enumerate(il.INPUTS):
        assert bit == 1 << i, name
        assert il.NAMES[i] == name
    assert il.INTERLOCKS == il.INTERLOCKS and il.N_INTERLOCKS == 6
    assert il.open_names(0) == "key,door,estop,handpiece,temp,flow"  # the footswitch is no interlock
    assert il.open_names(il.INTERLOCKS) == ""
