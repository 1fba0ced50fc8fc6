# The transition table: allowed and denied rows (SR-2, SR-4).
import state as st

ALL_EVENTS = range(st.N_EVENTS)
ALLOWED = {
    (st.BOOT, st.BOOTED): st.SELFTEST,
    (st.SELFTEST, st.TEST_PASS): st.STANDBY,
    (st.STANDBY, st.ARM): st.READY,
    (st.READY, st.DISARM): st.STANDBY,
    (st.READY, st.FOOT_DOWN): st.EMITTING,
    (st.EMITTING, st.FOOT_UP): st.PAUSED,
    (st.EMITTING, st.STOP): st.PAUSED,
    (st.EMITTING, st.PHASE_END): st.PAUSED,
    (st.EMITTING, st.SESSION_END): st.DONE,
    (st.PAUSED, st.FOOT_DOWN): st.EMITTING,
    (st.PAUSED, st.DISARM): st.STANDBY,
    (st.DONE, st.DISARM): st.STANDBY,
    (st.FAULT, st.RESET): st.STANDBY,
}


def test_every_row_of_the_case_table():
    for s in range(len(st.NAMES)):
        for e in ALL_EVENTS:
            want = ALLOWED.get((s, e), -1)
            if e == st.TRIP and s != st.FAULT:
                want = st.FAULT
            got = st.next_state(s, e)
            assert got == want, "%s + event %d -> %d, want %d" % (st.NAMES[s], e, got, want)


def test_emitting_is_reached_only_from_ready_or_paused_by_the_footswitch():
    for (s, e), to in st.TABLE.items():
        if to == st.EMITTING:
            assert e == st.FOOT_DOWN and s in (st.READY, st.PAUSED)


def test_fault_leaves_only_by_reset_to_standby():
    for (s, e), to in st.TABLE.items():
        if s == st.FAULT:
            assert (e, to) == (st.RESET, st.STANDBY)
