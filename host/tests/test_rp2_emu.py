"""The project's rp2 UF2 on the emulated RP2040 (boards/rp2/emu), reached over
a pty exactly as a host reaches a Pico's /dev/ttyACM0.

The waits below are host-side limits for a failure only (the emulator runs
10-50x slower than the chip); what is asserted comes from the device's own
lines and its emulated clock.
"""
import importlib.util
import re
import time
from pathlib import Path

import pytest
import serial

from handpiece.frames import parse
from handpiece.rp2emu import Rp2Emulator

ROOT = Path(__file__).resolve().parents[2]
BOOT_WAIT_S = 180  # a loaded 2-core CI machine; the boot line comes after ~20 s there


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    build = _load("build", ROOT / "boards" / "build.py")
    uf2image = _load("uf2image", ROOT / "boards" / "rp2" / "image" / "uf2image.py")
    tmp = tmp_path_factory.mktemp("emu")
    files = {p.name: p.read_bytes() for p in build.build("rp2", tmp / "rp2").iterdir()}
    path = tmp / "handpiece-rp2.uf2"
    path.write_bytes(uf2image.board_image("rp2", files)[0])
    return path


class Console:
    """The device's serial path as the host sees it, with one read buffer
    (bytes that arrive after a match are kept for the next read)."""

    def __init__(self, emu):
        self.emu = emu
        self.ser = serial.Serial(emu.open_pty(), timeout=0.1)  # opened before boot: no line is lost
        self.buf = b""
        self.seen = []

    def _more(self, deadline):
        if time.monotonic() > deadline or not self.emu.alive():
            pytest.fail("the device went quiet; last lines:\n%s\nunread: %r\nemulator stderr:\n%s"
                        % (b"\n".join(self.seen[-20:]).decode(errors="replace"), self.buf[-300:], self.emu.stderr()))
        self.buf += self.ser.read(max(1, self.ser.in_waiting))

    def line_matching(self, pattern, wait_s=BOOT_WAIT_S):
        """The first whole line that matches `pattern` (earlier lines are skipped)."""
        deadline = time.monotonic() + wait_s
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self.seen.append(line.rstrip(b"\r"))
                if re.search(pattern, self.seen[-1]):
                    return self.seen[-1]
            self._more(deadline)

    def prompt(self, wait_s=BOOT_WAIT_S):
        """REPL output up to the next `>>> ` prompt (which ends no line)."""
        deadline = time.monotonic() + wait_s
        while b">>> " not in self.buf:
            self._more(deadline)
        out, self.buf = self.buf.split(b">>> ", 1)
        return out.decode(errors="replace")

    def repl(self, line):
        """Type one line at the REPL; what it printed (the echo dropped)."""
        self.ser.write(line.encode() + b"\r\n")
        return self.prompt().split("\r\n", 1)[1].strip()


def test_image_boots_into_the_controller_over_the_serial_path(image):
    with Rp2Emulator(image) as emu:
        con = Console(emu)
        emu.start()
        boot = parse(con.line_matching(rb" boot fw=| exception "))
        assert boot.name == "boot", con.seen
        assert boot.fields["board"] == "rp2"
        assert boot.fields["reset"] == "power"
        assert boot.fields["fw"] == re.search(r'FW_VERSION = "(.*)"', (ROOT / "firmware" / "version.py").read_text())[1]
        # The controller then reaches STANDBY, its emulated clock still counting from power-on.
        standby = parse(con.line_matching(rb"state \w+>STANDBY"))
        assert standby.t_ms >= boot.t_ms
        con.ser.close()


def test_watchdog_resets_the_chip_and_flash_survives(image):
    """In safe mode (SAFE_MODE jumper to GND) the REPL is free: write a file,
    let the watchdog bite, and find the file and the reset cause after the reboot."""
    from handpiece.rp2emu import carrier_inputs, rp2_pins

    inputs = carrier_inputs()
    inputs[rp2_pins()["SAFE_MODE"]] = 0
    with Rp2Emulator(image, inputs) as emu:
        con = Console(emu)
        emu.start()
        con.line_matching(rb"safe mode")
        con.prompt()
        assert con.repl("import machine; machine.reset_cause() == machine.PWRON_RESET") == "True"
        con.repl("f = open('kept.txt', 'w'); f.write('survives'); f.close()")
        con.ser.write(b"w = machine.WDT(timeout=50)\r\n")  # not fed: bites 50 ms (emulated) later
        con.line_matching(rb"safe mode")
        con.prompt()
        assert con.repl("import machine; machine.reset_cause() == machine.WDT_RESET") == "True"
        assert con.repl("open('kept.txt').read()") == "'survives'"
        assert "reset watchdog" in emu.stderr()
        con.ser.close()


def test_an_output_pin_reads_back_the_level_it_drives(image):
    """As on the chip, GPIO_IN sees a driven pad: the firmware reads LASER_EN
    back with Pin.value() before each pulse and after each store write."""
    from handpiece.rp2emu import carrier_inputs, rp2_pins

    inputs = carrier_inputs()
    inputs[rp2_pins()["SAFE_MODE"]] = 0
    with Rp2Emulator(image, inputs) as emu:
        con = safe_mode_repl(emu)
        con.repl("from machine import Pin; en = Pin(%d, Pin.OUT, value=1)" % rp2_pins()["LASER_EN"])
        assert con.repl("en.value()") == "1"
        con.repl("en.value(0)")
        assert con.repl("en.value()") == "0"
        con.ser.close()


def safe_mode_repl(emu):
    con = Console(emu)
    emu.start()
    con.line_matching(rb"safe mode")
    con.prompt()
    return con


def high_times_ns(edges):
    """[(rise ns, high ns)] from a traced pin's (ns, level) edges."""
    out = []
    for (t0, v0), (t1, v1) in zip(edges, edges[1:]):
        if v0 == 1 and v1 == 0:
            out.append((t0, t1 - t0))
    return out


def test_pio_runs_in_lockstep_with_the_emulated_clock(image):
    """The firmware's own pulse program (boards/rp2/pio.py) on the emulated PIO:
    the FIRE pin is high for the programmed width, to the clock divider and
    loop cycle, and a square wave with delay cycles keeps its period."""
    from handpiece.rp2emu import carrier_inputs, rp2_pins

    pins = rp2_pins()
    inputs = carrier_inputs()
    inputs[pins["SAFE_MODE"]] = 0
    fire = pins["LASER_FIRE"]
    with Rp2Emulator(image, inputs, trace=(fire, 16)) as emu:
        con = safe_mode_repl(emu)
        con.repl("import machine, rp2, pio")
        con.repl("sm = rp2.StateMachine(4, pio.pulse, freq=pio.PULSE_HZ, set_base=machine.Pin(%d))" % fire)
        con.repl("sm.active(1)")
        for width_us in (100, 150, 120):
            con.repl("sm.put(pio.width_word(%d))" % width_us)
        con.repl("import time; time.sleep_ms(2)")
        # 8 us period, 4 us high: 2 x (1 + 19 delay) cycles at 5 MHz (divider 25).
        con.repl(r"exec('@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)\ndef sq():\n set(pins, 1) [19]\n set(pins, 0) [19]\n')")
        con.repl("sq_sm = rp2.StateMachine(0, sq, freq=5_000_000, set_base=machine.Pin(16)); sq_sm.active(1)")
        con.repl("time.sleep_ms(1); sq_sm.active(0)")
        pulses = high_times_ns(emu.edges(fire))
        assert [round(w / 1000) for _, w in pulses] == [100, 150, 120], pulses
        assert all(abs(w - us * 1000) <= 8 for (_, w), us in zip(pulses, (100, 150, 120))), pulses
        square = high_times_ns(emu.edges(16))
        assert len(square) >= 100, "about 125 periods in 1 ms"
        assert all(abs(w - 4000) <= 8 for _, w in square), square
        periods = [b[0] - a[0] for a, b in zip(square, square[1:])]
        assert all(abs(p - 8000) <= 8 for p in periods), periods
        con.ser.close()


def test_a_joined_fifo_holds_eight_words(image):
    """fifo_join=JOIN_TX gives the state machine an 8-word TX FIFO, as on the
    chip (the bench rig's encoder SM counts on it: at 4 words its refill
    blocked in put() for a whole run of counts); a stopped SM takes none."""
    from handpiece.rp2emu import carrier_inputs, rp2_pins

    inputs = carrier_inputs()
    inputs[rp2_pins()["SAFE_MODE"]] = 0
    with Rp2Emulator(image, inputs) as emu:
        con = safe_mode_repl(emu)
        con.repl("import rp2, machine")
        con.repl(r"exec('@rp2.asm_pio(fifo_join=rp2.PIO.JOIN_TX)\ndef held():\n pull(block)\n')")
        con.repl("sm = rp2.StateMachine(0, held)")
        con.repl("[sm.put(i) for i in range(4)]")
        assert con.repl("sm.tx_fifo(), machine.mem32[0x50200004] >> 16 & 1") == "(4, 0)"  # FSTAT TXFULL clear
        con.repl("[sm.put(i) for i in range(4)]")
        assert con.repl("sm.tx_fifo(), machine.mem32[0x50200004] >> 16 & 1") == "(8, 1)"
        con.ser.close()


def test_rig_channel_on_emulated_time(image):
    """The rp2-emu target's rig: inputs reach the firmware, `adv` runs the
    emulated clock, a power cycle reboots the chip keeping its flash."""
    from handpiece.targets import Rp2EmuTarget

    with Rp2EmuTarget(str(image)) as (device, rig):
        assert not rig.virtual and rig.counts_per_mm == 20
        t0 = rig.now_us()
        assert rig.advance(50) >= t0 + 50_000
        rig.open("door")
        rig.advance(50)  # past the firmware's 20 ms input debounce, on the emulated clock
        assert "door" in device.query_status()["open"]
        rig.close("door")
        rig.advance(50)
        assert device.query_status()["open"] == "-"
        rig.power_cycle()
        rig.wait_notification(lambda: rig.resets)
        assert rig.resets[0][1] == "power" and rig.resets[0][0] >= t0 + 90_000
        device.wait(lambda: len(device.events_named("boot")) == 2, timeout=Rp2EmuTarget.BOOT_TIMEOUT_S,
                    what="the second boot")
        assert device.events_named("boot")[1].fields["reset"] == "power"
        with pytest.raises(Exception, match="not on the emulated bench"):
            rig.crash()


def test_encoder_keyframes_reach_the_firmware_as_quadrature(image, tmp_path):
    """The hand moved by keyframes over the rig channel: the board's own PIO
    decoder (board.make() from the REPL, safe mode) counts the A/B edges the
    bench makes, to the count the keyframes say, both ways."""
    import socket

    from handpiece.rig import UnixRig
    from handpiece.rp2emu import carrier_inputs, rp2_pins

    inputs = carrier_inputs()
    inputs[rp2_pins()["SAFE_MODE"]] = 0
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "rig.sock"))
    listener.listen(1)
    listener.settimeout(BOOT_WAIT_S)
    with Rp2Emulator(image, inputs, rig_socket=str(tmp_path / "rig.sock")) as emu:
        con = safe_mode_repl(emu)
        rig = UnixRig(listener.accept()[0])
        con.repl("import board; b = board.make(); c0 = b.encoder.count()")
        t = rig.now_us()
        rig.cmd("hold 0")
        rig.cmd(f"kf {t + 50_000} 100")  # 100 counts (5 mm) in 50 ms
        rig.cmd(f"kf {t + 80_000} 100")
        rig.cmd(f"kf {t + 100_000} 37")
        rig.cmd(f"adv {t + 150_000 - rig.now_us()}")
        assert rig.position() == 37
        assert con.repl("b.encoder.count() - c0") == "37"
        rig.close_channel()
        con.ser.close()
    listener.close()


def test_scan_pulses_fire_and_the_photodiode_reads_their_light(image):
    """The rp2 image scans on the emulated chip: pulses leave the laser at the
    programmed width and power, the firmware's photodiode reading agrees with
    them (no energy fault), and a photodiode at half gain is caught (F06)."""
    from handpiece.motion import Motion
    from handpiece.strategy import Station
    from handpiece.targets import Rp2EmuTarget

    with Rp2EmuTarget(str(image)) as (device, rig):
        station = Station(device, rig)
        station.emitting(motion=Motion(0).sweeps(100, 60, 36))
        station.advance(300)
        assert station.state() == "EMITTING" and len(rig.pulses) >= 3, device.events[-5:]
        assert {(p.uj, p.width_us, p.power_w) for p in rig.pulses} == {(360_000, 120, 3000)}
        rig.cmd("pd gain 50")
        station.advance(200)
        assert station.state() == "FAULT"
        assert int(device.query_status()["fault"]) == 6


def test_two_pico_bench_wiring_follows_the_two_pin_maps():
    """Each rig output drives the device input of the same signal, each device
    output the rig input watching it (docs/boards.md, "Bench rig"); no input
    has two drivers; the device's power comes from the rig's POWER_RELAY."""
    from handpiece.rp2emu import bench_config, bench_wires, rp2_pins

    dev, rig = rp2_pins(), rp2_pins("rig_pico")
    wires = bench_wires()
    want = {("rig", rig["QUAD_A"], "dut", dev["ENC_A"]), ("rig", rig["QUAD_B"], "dut", dev["ENC_B"]),
            ("dut", dev["LASER_EN"], "rig", rig["EN_IN"]), ("dut", dev["LASER_FIRE"], "rig", rig["FIRE_IN"]),
            ("dut", dev["INDICATOR"], "rig", rig["IND_IN"])}
    want |= {("rig", rig[n], "dut", dev[n]) for n in ("KEY", "DOOR", "ESTOP", "HANDPIECE", "TEMP", "FLOW", "FOOT")}
    assert {tuple(w) for w in wires} == want
    inputs = [(w[2], w[3]) for w in wires]
    assert len(inputs) == len(set(inputs)), "an input with two drivers"
    config = bench_config(Path("d.uf2"), Path("r.uf2"), "d.sock", "r.sock", 10_000)
    assert list(config["chips"]) == ["dut", "rig"], "the device steps first: its outputs reach the rig exactly"
    assert config["supply"] == ["rig", rig["POWER_RELAY"], "dut"]
