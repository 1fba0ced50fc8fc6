# Fault gravity (SR-4): every fault has its own rank, so a later fault either
# replaces the latched one or not, never by chance of an index.
import codes


def test_every_fault_has_a_distinct_gravity():
    assert len(codes.GRAVITY) == len(codes.FAULTS)
    assert codes.GRAVITY[0] == 0
    assert sorted(codes.GRAVITY) == list(range(len(codes.FAULTS)))


def test_estop_is_graver_than_a_photodiode_fault():
    assert codes.GRAVITY[codes.F_ESTOP] > codes.GRAVITY[codes.F_PHOTODIODE]
