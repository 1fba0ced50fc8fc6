"""Bring a device into the state a test asks for (labgrid's Strategy idea):
tests say `station.emitting()`, not the boot steps."""
from __future__ import annotations

from .device import Device
from .motion import Motion
from .program import Program, parse, upload
from .rig import Rig

DEBOUNCE_MS = 25  # a little more than the board's input debounce

# A small scan program for tests: 10 J at 3000 W x 120 us (27 pulses).
SMALL_SCAN = {
    "program": {"name": "test scan"},
    "phase": [{
        "name": "scan", "mode": "scan", "width_us": 120, "power_w": 3000, "rate_hz": 30,
        "energy_j": 10, "spacing_mm": 3.3, "speed_min_mm_s": 20, "speed_max_mm_s": 150,
    }],
}


class Station:
    def __init__(self, device: Device, rig: Rig | None):
        self.device = device
        self.rig = rig
        self.ready_delay_ms = 0

    def standby(self) -> Station:
        info = self.device.hello()
        assert info, "handshake"
        settings = self.device.request("GET").fields
        self.ready_delay_ms = int(settings["ready_delay_ms"])
        return self

    def load(self, program: Program | dict | None = None) -> dict[str, str]:
        if program is None:
            program = SMALL_SCAN
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

    def advance(self, ms: float) -> int:
        """Let device time pass, then catch up with everything it said."""
        t = self.rig.advance(ms)
        self.device.sync()
        return t

    def state(self) -> str:
        return self.device.state()
