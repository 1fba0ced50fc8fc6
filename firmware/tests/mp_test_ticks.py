# 30-bit tick arithmetic, the same on every board.
import ticks


def test_diff_and_add_across_the_wrap():
    a = ticks.MASK - 10
    b = ticks.add(a, 25)
    assert b == 14
    assert ticks.diff(b, a) == 25
    assert ticks.diff(a, b) == -25


def test_half_period_is_the_horizon():
    assert ticks.diff(ticks.add(0, 0x1FFFFFFF), 0) == 0x1FFFFFFF
    assert ticks.diff(ticks.add(0, 0x20000000), 0) == -0x20000000  # past it: looks like the past
