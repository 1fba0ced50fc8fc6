"""Hand-motion profiles: builders, path length, recorded files."""
import pytest

from handpiece.motion import Motion, ProfileError


def test_sweeps_count_path_both_ways():
    m = Motion(0).sweeps(100, 50, 3)  # out, back, out: 300 mm in 6 s
    assert m.end_s == pytest.approx(6.0)
    assert m.x_at(3.0) == pytest.approx(50.0)
    assert m.path_mm_at(6.0) == pytest.approx(300.0)
    assert m.keyframes(20)[-1] == (6_000_000, 2000)


def test_hold_and_jitter_do_not_travel_on_average():
    m = Motion(10).hold(1).jitter(0.1, 0.05, 1)
    assert m.x_mm == 10
    assert all(abs(x - 10) <= 0.1 for _, x in m.points)


def test_bad_builders_are_refused():
    with pytest.raises(ProfileError):
        Motion().move(10, 0)
    with pytest.raises(ProfileError):
        Motion().hold(0)


def test_recorded_profile(tmp_path):
    p = tmp_path / "hand.csv"
    p.write_text("time_s,position_mm\n# a comment\n5.0,1.0\n5.5,11.0\n6.0,1.0\n")
    m = Motion.from_csv(p)
    assert m.points == [(0.0, 1.0), (0.5, 11.0), (1.0, 1.0)]


@pytest.mark.parametrize("text,message", [
    ("0,0\n0,1\n", "time must increase"),
    ("0,0\nx,1\n", "want time_s,position_mm"),
    ("0,0\n", "at least two rows"),
    ("0,0\n1,nan\n", "not a finite number"),
])
def test_bad_recordings_are_named(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ProfileError, match=message):
        Motion.from_csv(p)
    with pytest.raises(ProfileError, match="cannot read"):
        Motion.from_csv(tmp_path / "absent.csv")
