# The output queue: never waits on the link, drops by the documented rule, counts what it drops (SR-11).
from report import OUT_BYTES, Reporter


class Link:
    """Takes up to `room` bytes, then nothing until room is given again."""

    def __init__(self, room):
        self.room = room
        self.data = b""

    def write(self, buf):
        n = min(len(buf), self.room)
        self.data += bytes(buf[:n])
        self.room -= n
        return n

    def lines(self):
        return [ln for ln in self.data.decode().split("\n") if ln]


def pending(rep):
    """Bytes waiting in the queue."""
    return rep._bytes - rep._off


def test_lines_go_out_whole_and_in_order():
    link = Link(1000)
    rep = Reporter(link)
    rep.ok(1, "a=1")
    rep.event(5, "state", "A>B")
    rep.flush(5)
    assert link.lines() == ["ok 1 a=1*58", "ev 5 state A>B*4C"], link.lines()
    assert pending(rep) == 0


def test_a_full_link_keeps_the_rest_and_a_line_is_never_cut():
    link = Link(4)
    rep = Reporter(link)
    rep.ok(1, "a=1")
    rep.flush(0)
    assert link.data == b"ok 1" and pending(rep) == len("ok 1 a=1*58\n") - 4
    link.room = 1000
    rep.flush(0)
    assert link.lines() == ["ok 1 a=1*58"]


def test_each_status_line_is_kept_while_there_is_room():
    link = Link(0)
    rep = Reporter(link)
    rep.status("t=1")
    rep.status("t=2")
    link.room = 1000
    rep.flush(7)
    assert [ln[:6] for ln in link.lines()] == ["st t=1", "st t=2"], link.lines()


def test_a_full_queue_drops_status_then_pulses_then_the_oldest():
    link = Link(0)
    rep = Reporter(link)
    rep.event(1, "fault", "F03")
    rep.status("t=1")
    n = 0
    while pending(rep) + 40 < OUT_BYTES:
        rep.event(2, "pulse", "ph=0 pos=%d uj=360000" % n)
        n += 1
    for i in range(3):
        rep.event(3, "state", "X>Y%d" % i)  # each pushes out the status, then the oldest pulses
    link.room = 100000
    rep.flush(9)
    lines = link.lines()
    assert lines[0].startswith("ev 1 fault F03"), lines[0]
    assert not [ln for ln in lines if ln.startswith("st ")]
    kept = [ln for ln in lines if " pulse " in ln]
    assert kept[0].startswith("ev 2 pulse ph=0 pos=%d " % (n - len(kept)))  # the oldest went
    assert lines[-4].startswith("ev 3 state X>Y0") and lines[-2].startswith("ev 3 state X>Y2")
    lost = lines[-1]
    assert lost.startswith("ev 9 lines-lost st=1 pulse=%d other=0*" % (n - len(kept))), lost


def test_when_only_important_lines_wait_a_new_status_is_the_one_dropped():
    link = Link(0)
    rep = Reporter(link)
    n = 0
    while not rep.lost[2]:  # full of replies: the next one pushed the oldest out
        rep.ok(1, "x=%d" % n)
        n += 1
    before = pending(rep)
    rep.status("t=1")
    assert pending(rep) == before and rep.lost[0] == 1


def test_the_loss_is_reported_once():
    link = Link(0)
    rep = Reporter(link)
    while not rep.lost[0]:
        rep.status("t=1")
    link.room = 100000
    rep.flush(1)
    rep.flush(2)
    rep.ok(3)
    rep.flush(3)
    assert len([ln for ln in link.lines() if "lines-lost" in ln]) == 1, link.lines()


def test_pulse_line_is_the_pulse_event_byte_for_byte():
    """pulse() is the loop's fast path for the `pulse` event: the same line
    as ev(), ranked as a pulse event when the queue is full."""
    a, b = Link(1000), Link(1000)
    ra, rb = Reporter(a), Reporter(b)
    for args in ((0, 0, 0, 0), (1234567, 3, -812, 360000), (5, 1, 1073741823, 1)):
        ra.ev(args[0], "pulse", *args[1:])
        rb.pulse(*args)
    ra.flush(9)
    rb.flush(9)
    assert b.data == a.data and len(b.lines()) == 3, (a.data, b.data)
    full = Reporter(Link(0))
    while pending(full) < OUT_BYTES - 30:  # a state line is 20 bytes: one more still fits
        full.event(2, "state", "X>Y")
    full.pulse(3, 0, 1, 2)  # no room, and nothing queued is worth less: the pulse line goes
    assert full.lost == [0, 1, 0], full.lost
