"""Serial transport: pyserial underneath, a reader thread that drains the line
into complete lines (so the device never blocks on a full buffer), and a log
of all traffic for the test report."""
from __future__ import annotations

import collections
import queue
import threading
import time

import serial

LOG_LINES = 50_000  # traffic kept per connection; older lines are dropped


class TransportError(RuntimeError):
    pass


class SerialTransport:
    def __init__(self, port: str, baudrate: int = 115200):
        try:
            if "://" in port:  # a port on the network (rfc2217://host:port, as labgrid exports one)
                self._ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
            else:
                self._ser = serial.Serial(port, baudrate=baudrate, timeout=0.05, exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"cannot open serial port {port}: {e}") from e
        self.port = port
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.log: collections.deque[tuple[float, str, bytes]] = collections.deque(maxlen=LOG_LINES)
        self._closed = threading.Event()
        self._reading = threading.Event()  # cleared: the host stops reading (hold_reading)
        self._reading.set()
        self._idle = threading.Event()  # set by the reader while it is held
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._reader, name=f"rx {port}", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        with self._lock:
            self.log.append((time.monotonic(), ">", data))
            try:
                self._ser.write(data)
                self._ser.flush()
            except (serial.SerialException, OSError) as e:
                raise TransportError(f"write to {self.port} failed: {e}") from e

    def hold_reading(self) -> None:
        """Stop reading the port, as a host that hangs: the device's output
        backs up in the port (tests of SR-11). Returns once the reader is idle."""
        self._idle.clear()
        self._reading.clear()
        self._idle.wait(timeout=5.0)

    def resume_reading(self) -> None:
        self._reading.set()

    def _reader(self) -> None:
        buf = b""
        while not self._closed.is_set():
            if not self._reading.is_set():
                self._idle.set()
                self._reading.wait(timeout=0.05)
                continue
            try:
                # Block for one byte (up to the timeout), then take what waits.
                chunk = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError, TypeError):
                if not self._closed.is_set():
                    self.lines.put(b"")  # tells readers the line is gone
                return
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.rstrip(b"\r")
                self.log.append((time.monotonic(), "<", line))
                self.lines.put(line)

    def read_line(self, timeout: float) -> bytes | None:
        """Next line, None on timeout; b'' means the port closed."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def detach(self) -> serial.Serial:
        """Stop the reader thread and hand over the open port (benchmarks
        time raw reads without the thread in the way)."""
        self._closed.set()
        self._thread.join(timeout=1.0)
        return self._ser

    def close(self) -> None:
        self._closed.set()
        try:
            self._ser.close()
        except (serial.SerialException, OSError):
            pass
        self._thread.join(timeout=1.0)
        self.lines.put(b"")  # tells readers the line is gone

    def dump_log(self) -> str:
        if not self.log:
            return ""
        t0 = self.log[0][0]
        return "\n".join(f"{t - t0:10.6f} {d} {data.decode('ascii', 'replace')}" for t, d, data in self.log)
