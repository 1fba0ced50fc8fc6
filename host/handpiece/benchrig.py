"""The bench rig (boards/rig_pico) driven over its own USB serial port.

It speaks the rig line protocol of the simulated board (docs/rig.md), so
`BenchRig` is `UnixRig` over a serial port instead of a Unix socket. A bench
runs in real time and cannot reach inside the device: what it cannot do is
a capability a test declares (`needs_virtual_clock`, `needs_reset_model`,
`needs_loop_stall`, `needs_torn_write`, `needs_photodiode_faults`,
`needs_fault_injection`, `needs_light_meter`); the pytest plugin skips such
tests on a bench,
and a test that calls one without declaring it gets a clear RigError.

Times in notifications are the rig Pico's own microseconds (its ticks_us,
unwrapped), so pulse and enable-line timings stay exact on hardware.
"""
from __future__ import annotations

import socket
import time

import serial

from .motion import Motion
from .rig import CAPABILITIES, INPUTS, RigError, UnixRig

LEAD_US = 200_000  # a motion starts this far ahead of now, so its first keyframes are there in time
FEED_AHEAD_US = 2_000_000  # keyframes kept queued on the rig ahead of its clock (its queue holds 1,024)

# footswitch up first, then every interlock closed: how a fresh simulated board starts
HEALTHY = {"foot": False, **{name: True for name in INPUTS if name != "foot"}}


class _SerialConn:
    """A pyserial port with the socket calls UnixRig makes."""

    def __init__(self, port: serial.Serial):
        self._port = port
        self._closed = False

    def recv(self, n: int) -> bytes:
        while not self._closed:
            try:
                data = self._port.read(max(1, min(n, self._port.in_waiting)))
            except (serial.SerialException, OSError, TypeError, AttributeError):
                return b""  # the port went away or was closed under the read
            if data:
                return data
        return b""

    def sendall(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as e:
            raise RigError(f"rig serial port {self._port.port}: {e}") from e

    def shutdown(self, how: int) -> None:
        self._closed = True  # the reader's next read returns: close() can follow

    def close(self) -> None:
        self._closed = True
        self._port.close()


class BenchRig(UnixRig):
    """The rig Pico on `port`. Opening it puts the bench in the state a fresh
    simulated board starts in: every interlock closed, footswitch up, the
    hand still."""

    def __init__(self, port: str, baudrate: int = 115200):
        try:
            if "://" in port:  # a port on the network (rfc2217://host:port, as labgrid exports one)
                ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
            else:
                ser = serial.Serial(port, baudrate=baudrate, timeout=0.05, exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise RigError(f"cannot open the rig's serial port {port}: {e}") from e
        self.port = port
        self.problems: list[str] = []  # rig-side losses that leave its record incomplete
        ser.reset_input_buffer()
        ser.write(b"\n")  # ends any half line left on the rig: an empty line gets no reply
        try:
            super().__init__(_SerialConn(ser))
        except BaseException:
            ser.close()
            raise
        if self.virtual:
            self.close_channel()
            raise RigError(f"{port} answers with a virtual clock: not a bench rig")
        for name, on in HEALTHY.items():
            self.set_input(name, on)
        self.cmd("hold")
        # What the rig reported before the hand stopped belongs to the last
        # test (its hand moves on until this hold): this test's record starts here.
        with self._cv:
            self.problems.clear()
            self.pulses.clear()
            self.outputs.clear()
        # None of CAPABILITIES: the rig Pico drives the device's inputs and
        # power and watches its outputs (boards/rig_pico/board.py). It sees the
        # fire line, not the light; it has no photodiode to fault, no way to
        # stop the device's CPU or cut its USB, and it runs in real time.
        self.capabilities = frozenset()
        self._wall0, self._t0_us = time.monotonic(), self.now_us()

    def slowdown(self) -> float:
        """Wall seconds per rig second since opening (at least 1): about 1 on a
        bench of real Picos, tens on the emulated two-Pico bench. The station
        scales its hang protection by it."""
        rig_s = max(1e-3, (self.now_us() - self._t0_us) / 1e6)
        return max(1.0, (time.monotonic() - self._wall0) / rig_s)

    def close_channel(self) -> None:
        """Close the port only once the reader has stopped: a read in progress
        keeps the port's file, and with it the exclusive lock, alive until it
        returns, so the next test's open of the same port could be refused."""
        self._conn.shutdown(socket.SHUT_RDWR)  # the reader's next read returns
        self._thread.join(timeout=2.0)
        super().close_channel()

    def _line(self, line: str) -> None:
        w = line.split()
        rig_own = line.startswith("r ") and w[2:] == ["boot"]  # the rig Pico came up, not the device
        trouble = line.startswith("o ") and ("underrun=" in line or "lost=" in line)
        if rig_own or trouble:
            with self._cv:
                if trouble:
                    self.problems.append(line)  # not an output change: the rig's record has a gap
                self.log.append(line)
                self._cv.notify_all()
            return
        super()._line(line)

    def hand(self, motion: Motion) -> int:
        """Play `motion` from LEAD_US ahead of the rig's clock; returns its start
        time. Station.advance() keeps the rig's keyframe queue fed as it runs."""
        start = self.now_us() + LEAD_US
        kfs = motion.keyframes(self.counts_per_mm, start)
        self.cmd(f"hold {kfs[0][1]}")
        # The first keyframe goes too: the rig's path after `hold` runs from
        # the hold's instant, so without it the hand would set off at once
        # towards the second keyframe, LEAD_US early and slower.
        self._pending = list(kfs)
        self._sent_us = 0  # `hold` emptied the rig's queue: a last motion's keyframes no longer hold this one back
        self.feed()
        return start

    def feed(self) -> None:
        """Queue the keyframes due within FEED_AHEAD_US (the rig drops past ones)."""
        if self._pending:
            self._feed(self.now_us() + FEED_AHEAD_US)

    # -- what a bench cannot do

    def _cannot(self, what: str, capability: str) -> RigError:
        return RigError(f"the bench rig cannot {what}: it needs {CAPABILITIES[capability]}; "
                        f"mark the test needs_{capability}")

    def advance(self, ms: float) -> int:
        raise self._cannot("advance time", "virtual_clock")

    def photodiode(self, gain_pct=None, drop=None, stuck=None) -> None:
        raise self._cannot("change the photodiode", "photodiode_faults")

    def host_link(self, up: bool) -> None:
        raise self._cannot("cut the host link", "fault_injection")

    def stall(self, ms: float) -> int:
        raise self._cannot("stall the control loop", "loop_stall")

    def crash(self) -> None:
        raise self._cannot("raise an exception in the firmware", "reset_model")

    def tear_next_write(self) -> None:
        raise self._cannot("tear a store write", "torn_write")

    def soft_reset(self) -> None:
        raise self._cannot("soft-reset the firmware", "reset_model")

    def scramble_store(self) -> None:
        raise self._cannot("scramble the store", "reset_model")


def parse_rig_spec(spec: str) -> tuple[str, int]:
    """'serial:/dev/ttyACM1[@baud]' -> (port, baud)."""
    if not spec.startswith("serial:"):
        raise RigError(f"unknown rig {spec!r}: use serial:/dev/ttyACM1[@baud]")
    port, _, baud = spec[7:].partition("@")
    if not port:
        raise RigError("the rig needs a port: serial:/dev/ttyACM1")
    if baud and not baud.isdigit():
        raise RigError(f"rig baud rate must be a whole number, got {baud!r}")
    return port, int(baud) if baud else 115200
