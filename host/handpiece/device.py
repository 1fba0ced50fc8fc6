"""Protocol client: commands with sequence numbers, replies, events, status."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import PROTO_VERSION
from .frames import STATUS, STOP, FrameError, Line, frame, parse, recover
from .transport import SerialTransport

REPLY_TIMEOUT_S = 10.0  # hang protection only; nothing here asserts timing
# A framed request whose reply has not come this long after a line from the
# device was dropped (a cut link may have torn the reply) is sent again: same
# number, same words, so the device resends its reply and does not act again.
RESEND_S = 1.0
# refusals of the frame itself: the device did not take its sequence number
FRAME_ERRORS = (1, 2, 3, 4, 9, 10)


class DeviceError(RuntimeError):
    """The device refused a command: `code` is the protocol error code."""

    def __init__(self, code: int, text: str, line: str):
        super().__init__(f"E{code:02d} {text}")
        self.code = code
        self.text = text
        self.line = line


class ProtocolError(RuntimeError):
    """The device said something that breaks the protocol (or said nothing)."""


class Device:
    def __init__(self, transport: SerialTransport):
        self.t = transport
        self.seq = 0
        self.events: list[Line] = []
        self.status: list[Line] = []
        self.bad_lines: list[str] = []
        self._replies: list[Line] = []
        self._cv = threading.Condition()
        self._listeners: list[Callable[[Line], None]] = []
        self._request_lock = threading.Lock()  # one framed request at a time
        self.closed = False
        self._pump = threading.Thread(target=self._run, name="device pump", daemon=True)
        self._pump.start()
        self.info: dict[str, str] = {}

    # -- intake

    def _run(self) -> None:
        while True:
            raw = self.t.read_line(timeout=0.5)
            if raw is None:
                continue
            if raw == b"":
                with self._cv:
                    self.closed = True
                    self._cv.notify_all()
                return
            try:
                line = parse(raw)
            except FrameError as e:
                line = recover(raw)  # a line the link broke off, joined to the next one
                with self._cv:
                    self.bad_lines.append(str(e) if line is None else f"{e}: kept {line.raw!r}")
                    self._cv.notify_all()
                if line is None:
                    continue
            with self._cv:
                if line.kind in ("ok", "er"):
                    self._replies.append(line)
                elif line.kind == "st":
                    self.status.append(line)
                else:
                    self.events.append(line)
                self._cv.notify_all()
            for fn in list(self._listeners):
                fn(line)

    def listen(self, fn: Callable[[Line], None]) -> None:
        self._listeners.append(fn)

    def wait(self, pred: Callable[[], object], timeout: float = REPLY_TIMEOUT_S, what: str = "condition"):
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                got = pred()
                if got:
                    return got
                if self.closed:
                    raise ProtocolError(f"serial port {self.t.port} closed while waiting for {what}")
                left = end - time.monotonic()
                if left <= 0:
                    raise ProtocolError(f"no {what} from {self.t.port} within {timeout:.0f} s")
                self._cv.wait(left)

    # -- requests

    def _reply(self, seq: int | None, timeout: float = REPLY_TIMEOUT_S, resend: bytes = b"",
               dropped: int = 0) -> Line:
        """The reply to `seq`. With `resend` (the frame as sent), the frame is
        sent again whenever lines were dropped since `dropped` (len(bad_lines)
        before the frame went out) and no reply came for RESEND_S."""
        def find():
            for i, r in enumerate(self._replies):
                if r.seq == seq:
                    return self._replies.pop(i)
            return None

        what = f"reply to N{seq}"
        end = time.monotonic() + timeout
        while resend:
            left = end - time.monotonic()
            try:
                return self.wait(find, min(RESEND_S, left), what)
            except ProtocolError:
                if self.closed:
                    raise
                if left <= RESEND_S:
                    raise ProtocolError(f"no {what} from {self.t.port} within {timeout:.0f} s") from None
            if len(self.bad_lines) > dropped:  # the reply may be the line that was dropped
                dropped = len(self.bad_lines)
                self.t.write(resend)
        return self.wait(find, timeout, what)

    def request(self, text: str) -> Line:
        """Send a framed command; return its `ok` line or raise DeviceError.
        Safe from several threads (a heartbeat beside the main job)."""
        with self._request_lock:
            seq = (self.seq + 1) % 100000
            data = frame(seq, text)  # refuses text the device could not take
            self.seq = seq
            dropped = len(self.bad_lines)  # before the write: a torn reply may be read before _reply runs
            self.t.write(data)
            line = self._reply(seq, resend=data, dropped=dropped)
            if line.kind == "er":
                if line.code in FRAME_ERRORS:
                    self.seq = (seq - 1) % 100000  # the device did not take this number
                raise DeviceError(line.code, line.text, line.raw)
            return line

    def send_raw(self, data: bytes, reply: bool = True, timeout_s: float = REPLY_TIMEOUT_S) -> Line | None:
        """Send bytes as they are (unframed commands, garbage, for tests and
        terminals); return the next unframed reply if one is expected."""
        self.t.write(data)
        return self._reply(None, timeout_s) if reply else None

    def forget_replies(self) -> None:
        """Drop replies nobody waited for (after a burst of raw writes)."""
        with self._cv:
            self._replies.clear()

    def sync(self) -> None:
        """Round trip an unframed VER: every line the device wrote before it
        has then been read (the rig's clock and the serial line meet here).
        Unframed replies still waiting from before are dropped."""
        self.t.write(b"VER\n")

        def ver_reply():
            while self._replies:
                r = self._replies.pop(0)
                if r.seq is None and r.kind == "ok" and r.text.startswith("HILT "):
                    return r
            return None

        self.wait(ver_reply, what="the VER reply")

    def hello(self, timeout_s: float = REPLY_TIMEOUT_S) -> dict[str, str]:
        self.seq = 0
        self.t.write(frame(0, f"HELLO {PROTO_VERSION}"))
        try:
            line = self._reply(0, timeout_s)
        except ProtocolError as e:
            raise ProtocolError(f"{e}: is the handpiece firmware running on {self.t.port}?") from e
        if line.kind == "er":
            raise DeviceError(line.code, line.text, line.raw)
        self.info = line.fields
        return self.info

    def stop(self) -> None:
        """Real-time stop: acts immediately, even mid-line."""
        self.t.write(STOP)

    def query_status(self, timeout_s: float = REPLY_TIMEOUT_S) -> dict[str, str]:
        """STATUS, unframed: reading needs no handshake (it survives a reboot)."""
        line = self.send_raw(b"STATUS\n", timeout_s=timeout_s)
        if line.kind == "er":
            raise DeviceError(line.code, line.text, line.raw)
        return line.fields

    def request_status_byte(self) -> Line:
        n = len(self.status)
        self.t.write(STATUS)
        return self.wait(lambda: self.status[n] if len(self.status) > n else None, what="status line")

    def events_named(self, name: str) -> list[Line]:
        with self._cv:
            return [e for e in self.events if e.name == name]

    def state(self) -> str:
        return self.query_status()["state"]

    def close(self) -> None:
        self.t.close()
        self._pump.join(timeout=2.0)
