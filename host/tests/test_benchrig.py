"""The bench rig's host driver against the rig's own firmware (boards/rig_pico,
in the Unix port with fake port modules, behind a pty: boards/tests/rig_peer.py),
the plugin's --rig and capability markers, and the station on a wall clock."""
import os
import subprocess
import sys
import threading
import time
import tty

import pytest

from handpiece.benchrig import LEAD_US, BenchRig
from handpiece.motion import Motion
from handpiece.rig import INPUTS, Pulse, RigError
from handpiece import strategy
from handpiece.device import REPLY_TIMEOUT_S
from handpiece.strategy import BOOT_S, T_WRAP_MS, Station
from handpiece.targets import ROOT, SerialTarget, TargetError, UnixPortTarget, find_micropython, make_target, \
    micropython_argv


@pytest.fixture
def rig_port():
    """The pty path the rig peer answers on, as a USB serial port would."""
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(micropython_argv(find_micropython()) + [str(ROOT / "boards" / "tests" / "rig_peer.py")],
                            stdin=master, stdout=master, stderr=subprocess.PIPE)
    os.close(master)
    path = os.ttyname(slave)
    yield path
    proc.kill()
    proc.wait(timeout=5)
    os.close(slave)


@pytest.fixture
def rig(rig_port):
    r = BenchRig(rig_port)
    yield r
    r.close_channel()


def line_level(rig, name):
    return int(rig.cmd(f"_out {name}"))


def test_opening_leaves_the_bench_as_a_fresh_simulated_board_starts(rig):
    """Every interlock line closed, the footswitch up: the rig's own power-up
    state is every line open."""
    assert rig.virtual is False and rig.capabilities == frozenset()
    assert rig.counts_per_mm == 20
    assert {n: line_level(rig, n) for n in INPUTS} == {n: int(n != "foot") for n in INPUTS}


def test_the_port_is_free_for_the_next_test_once_closed(rig_port):
    """Closing waits for the reader: its read in progress would keep the port's
    exclusive lock, and the next test's open of the port was refused (seen on
    the emulated two-Pico bench)."""
    for _ in range(20):
        r = BenchRig(rig_port)
        r.now_us()
        r.close_channel()
        assert not r._thread.is_alive()


def test_what_the_last_test_left_on_the_line_is_not_this_tests_record():
    """The device is not reset between tests and the last test's hand moves on
    until the new BenchRig's `hold`: a pulse, an edge or an underrun the rig
    reported before it belongs to that test, not to this one."""
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)

    def fake_rig():
        buf = b""
        while True:
            try:
                buf += os.read(master, 256)
            except OSError:
                return
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                w = line.split()
                if not w:
                    continue
                if w[0] == b"info":
                    os.write(master, b"= clock=real counts_per_mm=20 t=100\n")
                elif w[0] == b"hold":  # the last test's tail comes just before the hold is read
                    os.write(master, b"p 90 5 0 120 0\no 91 en=0\no 92 underrun=1\n= 7\n")
                else:
                    os.write(master, b"= 100\n")

    threading.Thread(target=fake_rig, daemon=True).start()
    rig = BenchRig(os.ttyname(slave))
    try:
        assert rig.pulses == [] and rig.outputs == [] and rig.problems == []
    finally:
        rig.close_channel()
        os.close(master)
        os.close(slave)


def test_inputs_and_hand_commands_reach_the_rig(rig):
    t0 = rig.now_us()
    t1 = rig.open("door")
    assert t1 >= t0 and line_level(rig, "door") == 0
    rig.press()
    assert line_level(rig, "foot") == 1
    rig.release()
    assert line_level(rig, "foot") == 0
    with pytest.raises(RigError, match="no input 'lid'"):
        rig.set_input("lid", True)
    start = rig.hand(Motion(5).hold(0.5).move(10, 50))
    assert start >= t1 + LEAD_US
    assert rig.position() == 100  # 5 mm x 20 counts/mm, held until the motion starts


def test_the_hand_stays_still_until_its_motion_starts(rig):
    """The motion starts LEAD_US ahead, not at the `hold` that precedes it:
    the hand sets off at its start time at its own speed (the first keyframe
    was dropped, and the hand drifted off from the `hold` on)."""
    start = rig.hand(Motion(5).move(10, 50))  # 100 -> 300 counts in 0.2 s
    time.sleep(max(0.0, (start - rig.now_us()) / 1e6 - 0.04))
    assert rig.now_us() < start and rig.position() == 100
    time.sleep(max(0.0, (start + 100_000 - rig.now_us()) / 1e6))
    assert 180 <= rig.position() <= 300  # on its way at 50 mm/s: 200 counts at start + 0.1 s


def test_a_new_motion_replaces_a_long_one(rig):
    """A second hand() in a test plays its own motion, even while the first
    one's keyframes reach far beyond the feed horizon."""
    rig.hand(Motion(0).hold(10))
    start = rig.hand(Motion(5).move(10, 50))
    time.sleep(max(0.0, (start + 300_000 - rig.now_us()) / 1e6))
    assert rig.position() == 300


def test_notifications_become_pulses_and_enable_changes(rig):
    rig.cmd("_fire 120")
    rig.cmd("_en 1")
    rig.cmd("_en 0")
    rig.wait_notification(lambda: len(rig.outputs) >= 2 and rig.pulses)
    (p,) = rig.pulses
    assert isinstance(p, Pulse) and (p.pos, p.uj, p.width_us, p.power_w) == (0, 0, 120, 0)
    assert [(name, v) for _, name, v in rig.outputs] == [("en", 1), ("en", 0)]
    assert rig.enable_drops() == [rig.outputs[1][0]] and rig.enable_level() == 0
    assert rig.outputs[0][0] < rig.outputs[1][0]  # the rig's own microseconds, in order
    assert rig.problems == []


def test_lost_events_are_a_problem_not_an_output(rig):
    rig.cmd("_fill 40")  # more edges than the rig's ring holds before its loop reports
    rig.wait_notification(lambda: rig.problems)
    assert "lost=1" in rig.problems[0]
    assert all(name in ("ind", "en") for _, name, _ in rig.outputs)


@pytest.mark.parametrize("call, marker", [
    (lambda r: r.advance(10), "needs_virtual_clock"),
    (lambda r: r.photodiode(gain_pct=50), "needs_photodiode_faults"),
    (lambda r: r.host_link(False), "needs_fault_injection"),
    (lambda r: r.stall(300), "needs_loop_stall"),
    (lambda r: r.crash(), "needs_reset_model"),
    (lambda r: r.soft_reset(), "needs_reset_model"),
])
def test_what_a_bench_cannot_do_names_the_marker(rig, call, marker):
    with pytest.raises(RigError, match=marker):
        call(rig)


def test_power_cycle_is_reported_as_a_reset(rig):
    rig.power_cycle()
    rig.wait_notification(lambda: rig.resets)
    assert [what for _, what in rig.resets] == ["power"]  # the rig's own boot line is not the device's


def test_serial_target_opens_device_and_rig(rig_port, tmp_path):
    device_port = tmp_path / "ttyDUT"
    device_port.write_text("")  # a stand-in path: nothing is read from it here
    target = make_target(f"serial:{device_port}", rig=f"serial:{rig_port}")
    assert isinstance(target, SerialTarget) and target.capabilities == frozenset()
    with pytest.raises(TargetError, match="has its own rig"):
        make_target("unix", rig=f"serial:{rig_port}")
    with pytest.raises(TargetError, match="rig baud rate"):
        make_target("serial:/dev/null", rig=f"serial:{rig_port}@fast")
    with pytest.raises(TargetError, match="/dev/ttyNOPE3 does not exist"):
        SerialTarget("/dev/null", rig="serial:/dev/ttyNOPE3").open()


def test_station_on_a_wall_clock_waits_for_the_device(tmp_path):
    """The simulated board on its real clock: nothing advances time, the
    station waits for the device's clock and its events instead."""
    with UnixPortTarget(clock="real", board_env={"HP_READY_DELAY_MS": "100"}) as (device, rig):
        assert not rig.virtual and "virtual_clock" not in rig.capabilities
        station = Station(device, rig)
        station.emitting(motion=Motion(0).move(40, 60))
        states = [e.text for e in device.events if e.name == "state"]
        assert states[states.index("STANDBY>READY"):] == ["STANDBY>READY", "READY>EMITTING"]
        t0 = rig.now_us()
        t1 = station.advance(300)
        # device time passed, on the board's own clock; the station reads it in
        # whole ms from STATUS, so the rig's us may show up to 1 ms less
        assert t1 - t0 >= 299_000
        assert rig.pulses, "the hand moved 40 mm while emitting"


def pytest_run(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_tests_needing_what_a_target_lacks_are_skipped_saying_why(tmp_path):
    (tmp_path / "test_caps.py").write_text(
        "import pytest\n"
        "@pytest.mark.needs_virtual_clock\n"
        "def test_clock(hil):\n    assert hil[1].virtual\n"
        "@pytest.mark.needs_reset_model\n"
        "def test_reset(hil):\n    assert 'reset_model' in hil[1].capabilities\n")
    r = pytest_run(tmp_path, "--target", "serial:/dev/null")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 skipped" in r.stdout
    assert "needs a virtual clock the rig advances" in r.stdout and "the serial:/dev/null target has none" in r.stdout
    assert "needs modelled resets inside the firmware" in r.stdout
    r = pytest_run(tmp_path)  # the simulated board has both
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr


def test_a_rig_without_a_board_or_port_stops_the_run(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    r = pytest_run(tmp_path, "--rig", "serial:/dev/null")
    assert r.returncode == 2 and "has its own rig" in r.stdout + r.stderr
    r = pytest_run(tmp_path, "--target", "serial:/dev/null", "--rig", "serial:/dev/ttyNOPE4")
    assert r.returncode == 2 and "/dev/ttyNOPE4 does not exist (is the rig plugged in?)" in r.stdout + r.stderr


class ClockOnlyDevice:
    """A device that only tells its time: `t` (ms of the 30-bit us tick) moves
    60 ms per status request, from just before the tick wraps."""

    def __init__(self, t_ms):
        self.t_ms = t_ms
        self.events = []
        self.timeouts = []  # each status request's wait

    def query_status(self, timeout_s=REPLY_TIMEOUT_S):
        self.timeouts.append(timeout_s)
        self.t_ms = (self.t_ms + 60) % T_WRAP_MS
        return {"t": str(self.t_ms)}

    def sync(self):
        pass


def test_station_waits_across_the_device_tick_wrap(monkeypatch):
    monkeypatch.setattr(strategy, "POLL_S", 0)
    device = ClockOnlyDevice(T_WRAP_MS - 100)
    t = Station(device, None).advance(300)  # a board without a rig: the device's time, in us
    assert t == 260_000  # 60 ms steps from 1,073,702 ms: 300 ms on at 260 ms after the wrap


def wall_clock_rig(monkeypatch, slowdown):
    """A wall clock the test moves ([seconds]) in place of strategy's, and a
    wall-clock rig whose measured slowdown is `slowdown`."""
    wall = [0.0]

    class Clock:
        @staticmethod
        def monotonic():
            return wall[0]

        @staticmethod
        def sleep(s):
            wall[0] += s

    class Rig:
        virtual = False

        def slowdown(self):
            return slowdown

        def now_us(self):
            return 0

    monkeypatch.setattr(strategy, "time", Clock)
    return wall, Rig


def test_a_wait_may_run_slower_than_the_slowdown_measured_so_far(monkeypatch):
    """Hang protection only: an emulated bench's device time passing 2.5x
    slower than the rig's slowdown since opening predicts (emitting, after an
    idle start) is no hang, and a clock that stands still still is."""
    wall, Rig = wall_clock_rig(monkeypatch, 30.0)

    class Device(ClockOnlyDevice):
        def query_status(self, timeout_s=None):
            wall[0] += 30.0 * 2.5 * 0.06  # 60 ms of device time at 2.5x the measured slowdown
            return super().query_status()

    monkeypatch.setattr(strategy, "POLL_S", 0)
    assert Station(Device(0), Rig()).advance(5000) == 0
    stuck = Device(0)
    stuck.query_status = lambda timeout_s=None: (wall.__setitem__(0, wall[0] + 1.0), {"t": "0"})[1]
    with pytest.raises(strategy.ProtocolError, match="stood still"):
        Station(stuck, Rig()).advance(5000)


def test_a_slow_board_is_polled_per_its_own_time_not_the_wall(monkeypatch):
    """Each poll is a STATUS line the device's loop handles: an emulated board
    35x slower than a Pico is polled about as often in its own time as a Pico
    would be (every 10 ms), not every 10 ms of wall time (every 0.3 ms of its
    time, its loop away from its armed pulse)."""
    wall, Rig = wall_clock_rig(monkeypatch, 35.0)

    class Device:
        polls = 0

        def query_status(self, timeout_s=None):
            self.polls += 1
            return {"t": str(round(wall[0] / 35.0 * 1000))}

        def sync(self):
            pass

    dev = Device()
    Station(dev, Rig()).advance(300)
    assert dev.polls <= 300 / (strategy.POLL_S * 1000) + 2


@pytest.fixture
def board_port():
    """The simulated board running alone (no rig channel) behind a pty, as a
    board on a serial port: it keeps running from test to test."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)  # as UnixPortTarget gives it: the firmware polls its stdin
    env = dict(os.environ, HP_READY_DELAY_MS="100", HP_CLOCK="real")
    env.pop("HP_RIG", None)
    proc = subprocess.Popen(micropython_argv(find_micropython()) + [str(ROOT / "boards" / "unix" / "main.py")],
                            stdin=master, stdout=master, stderr=subprocess.DEVNULL, env=env)
    os.close(master)
    yield os.ttyname(slave)
    proc.kill()
    proc.wait(timeout=5)
    os.close(slave)


def test_a_board_and_its_bench_rig_through_the_plugin(tmp_path, board_port, rig_port):
    """--target serial: and --rig serial: give the fixtures a board and a bench
    rig; the station readies the board on its own clock; what only the
    simulated board can do is skipped, saying why."""
    (tmp_path / "test_bench.py").write_text(
        "import pytest\n"
        "def test_ready(station, rig):\n"
        "    assert not rig.virtual and rig.capabilities == frozenset()\n"
        "    assert rig.now_us() > 0\n"
        "    station.ready()\n"
        "    assert station.state() == 'READY'\n"
        "@pytest.mark.needs_reset_model\n"
        "def test_crash(station, rig):\n"
        "    rig.crash()\n")
    r = pytest_run(tmp_path, "--target", f"serial:{board_port}", "--rig", f"serial:{rig_port}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 1 skipped" in r.stdout
    assert "needs modelled resets inside the firmware" in r.stdout


def test_a_board_left_armed_or_faulted_starts_the_next_test_in_standby(tmp_path, board_port):
    """A serial board is not reset between tests: the target brings it back to
    STANDBY without supervision, as a fresh board starts (on a bench the
    device also boots with the rig's interlock lines open: a latched fault)."""
    (tmp_path / "test_seq.py").write_text(
        "def test_leave_it_armed_and_supervised(station):\n"
        "    station.standby()\n"
        "    station.device.request('SET sup_ms=200')\n"
        "    station.ready()\n"
        "    assert station.state() in ('READY', 'FAULT')  # supervised: silence trips it\n"
        "def test_next_starts_fresh(station):\n"
        "    assert station.state() == 'STANDBY'\n"
        "    assert station.device.request('GET').fields['sup_ms'] == '0'\n"
        "    station.ready()\n"
        "    assert station.state() == 'READY'\n")
    r = pytest_run(tmp_path, "--target", f"serial:{board_port}", "-p", "no:randomly")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout


def test_the_bench_rig_measures_its_slowdown_for_the_station(rig, monkeypatch):
    """Wall seconds per rig second since opening: the station scales its hang
    protection by it (tens on the emulated two-Pico bench, about 1 on Picos).
    One measurement, held: two would differ by the time between them."""
    measured = rig.slowdown()
    assert measured >= 1.0
    monkeypatch.setattr(rig, "slowdown", lambda: measured)
    assert Station(None, rig).wall_s(2.0) == 2.0 * measured


def test_hello_after_a_reset_waits_as_long_as_a_slow_board_boots():
    """An emulated board boots tens of times slower than a Pico: the wait for
    its HELLO answer after a reset scales with the rig's measured slowdown."""
    class SlowRig:
        virtual = False

        def slowdown(self) -> float:
            return 30.0

    class Dev:
        def hello(self, timeout_s: float) -> dict[str, str]:
            self.timeout_s = timeout_s
            return {}

    dev = Dev()
    Station(dev, SlowRig()).hello()
    assert dev.timeout_s == 2 * 30.0 * BOOT_S > REPLY_TIMEOUT_S
    dev_fast = Dev()
    Station(dev_fast, None).hello()
    assert dev_fast.timeout_s == REPLY_TIMEOUT_S


def test_a_wait_right_after_a_reset_lets_a_slow_board_boot():
    """rig.power_cycle() then station.advance(10) on the emulated rp2: the
    first clock read reaches a chip still booting (0.6 s of its time, tens
    of wall seconds under load), so its wait scales as HELLO's does."""
    class SlowRig:
        virtual = False

        def slowdown(self) -> float:
            return 30.0

        def now_us(self) -> int:
            return 0

    dev = ClockOnlyDevice(0)
    Station(dev, SlowRig()).advance(100)
    assert dev.timeouts[0] == 2 * 30.0 * BOOT_S > REPLY_TIMEOUT_S
