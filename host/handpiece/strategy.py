"""Bring a device into the state a test asks for (labgrid's Strategy idea):
tests say `station.emitting()`, not the boot steps."""
from __future__ import annotations

from .device import Device
from .motion import Motion
from .program import Program, parse, upload
from .rig import Rig

DEBOUNCE_MS = 25  # a little more than the board's input debounce

# A scan program for tests: 100 J at 3000 W x 120 us (277 pulses, tens of seconds of scanning).
TEST_SCAN = {
    "program": {"name": "test scan"},
    "phase": [{
        "name": "scan", "mode": "scan", "width_us": 120, "power_w": 3000, "rate_hz": 30,
        "energy_j": 100, "spacing_mm": 3.3, "speed_min_mm_s": 20, "speed_max_mm_s": 150,
    }],
}


class Station:
    def __init__(self, device: Device, rig: Rig | None):
        self.device = device
        self.rig = rig
        self.ready_delay_ms = 0
        self.heartbeat_ms = 0  # while > 0, advance() sends HB at this interval

    def standby(self) -> Station:
        self.device.hello()
        settings = self.device.request("GET").fields
        self.ready_delay_ms = int(settings["ready_delay_ms"])
        return self

    def load(self, program: Program | dict | None = None) -> dict[str, str]:
        if program is None:
            program = TEST_SCAN
        if isinstance(program, dict):
            program = parse(program, "test")
        return upload(self.device, program)

    def ready(self, program: Program | dict | None = None) -> Station:
        """READY with the ready delay passed, footswitch up."""
        self.standby()
        self.load(program)
        self.device.request("READY")
        if self.rig is not None:
            self.advance(self.ready_delay_ms + 1)
        return self

    def emitting(self, program: Program | dict | None = None, motion: Motion | None = None) -> Station:
        self.ready(program)
        if motion is not None:
            self.rig.hand(motion)
        self.rig.press()
        self.advance(DEBOUNCE_MS)
        return self

    def supervise(self, sup_ms: int) -> None:
        """Host-supervised mode: the device needs a frame every sup_ms; this
        station's advance() then heartbeats at two thirds of that."""
        self.device.request(f"SET sup_ms={sup_ms}")
        self.heartbeat_ms = sup_ms * 2 // 3

    def advance(self, ms: float) -> int:
        """Let device time pass (heartbeating if supervised), then catch up
        with everything the device said."""
        left = ms
        while self.heartbeat_ms and left > self.heartbeat_ms:
            self.device.request("HB")
            self.rig.advance(self.heartbeat_ms)
            left -= self.heartbeat_ms
        if self.heartbeat_ms:
            self.device.request("HB")
        t = self.rig.advance(left)
        self.device.sync()
        return t

    def state(self) -> str:
        return self.device.state()
