"""Simulated board for the MicroPython Unix port.

The board is its parts, each modelled in its own module:
- the clock, and the wait where time passes and the parts run (simclock.py);
- the laser and the photodiode (simlaser.py);
- the encoder: position in counts from hand keyframes (simencoder.py);
- inputs: interlocks and footswitch as the rig sets them, an interlock
  opening latched until the firmware's next read as on the MCU boards; the
  indicator (siminputs.py);
- the serial link: stdin/stdout, a pty the host holds (simlink.py);
- the store: the real boards' file store (one file per slot, HP_STORE the
  folder prefix), its writes cut at a chosen step by a power loss, a soft
  reset, a write error, a kill of the process or a stall (simstore.py);
- the watchdog: bites when not fed for its timeout (virtual or real time):
  the enable line drops and the firmware restarts with RESET_WATCHDOG
  (simwdt.py, run by the clock).

The rig channel (rigchannel.py) is a Unix socket (`HP_RIG`, a path): text
lines, see docs/rig.md. Without HP_RIG the board runs alone with every
interlock closed.
"""
import os
import select

import hal
from rigchannel import RigChannel
import reference
from simclock import Clock, Reset
from simencoder import Encoder
from siminputs import Indicator, Inputs
from simlaser import Laser
from simlink import Link
from simstore import Store
from simwdt import Wdt

# The reference board's tables (shared/reference.py), unchanged on this board
# (but see HP_READY_DELAY_MS below: a bench variant set by the environment).
LIMITS = dict(reference.LIMITS)
SETTINGS = dict(reference.SETTINGS)


# A bench variant of the simulated board: a shorter ready delay, so that a
# real-time latency benchmark can re-arm a thousand times in minutes. Set by
# whoever starts the board (like choosing a board definition), never over the wire.
if os.getenv("HP_READY_DELAY_MS"):
    SETTINGS["ready_delay_ms"] = int(os.getenv("HP_READY_DELAY_MS"))


class Board(Clock):
    name = "unix"
    limits = LIMITS
    settings = SETTINGS

    def __init__(self):
        super().__init__()
        self.laser = Laser(self)
        self.encoder = Encoder(self)
        self.inputs = Inputs()
        self.indicator = Indicator(self)
        self.link = Link()
        self.store = Store(self, os.getenv("HP_STORE") or "")
        self.wdt = Wdt(self)
        self.cause = hal.RESET_POWER
        self.heap_base = 0  # heap the simulator itself holds, set by main.py
        self.rig = None
        path = os.getenv("HP_RIG")
        if path:
            self.rig = RigChannel(self, path)
            self._poll.register(self.rig.sock, select.POLLIN)
        self.notify("r %d boot" % self.t)

    # -- the HAL

    def reset_cause(self):
        return self.cause

    def restart(self, cause):
        """What a reset does to the peripherals before the firmware boots again.
        A soft restart (exception) leaves the output latches as they were, so
        the firmware itself must drive them off (SR-1)."""
        self.cause = cause
        self.stall_until = -1
        self._loop_t = -1  # a reboot is not a loop period
        cold = cause == hal.RESET_WATCHDOG or cause == hal.RESET_POWER
        self.laser.reset(cold)
        if cold:
            self.wdt.timeout_us = 0
        self.notify("r %d boot cause=%d" % (self.t, cause))

    def reset_now(self, cause, what):
        """A reset from outside the firmware (power, soft reset, torn write)."""
        self.notify("r %d %s" % (self.t, what))
        raise Reset(cause)

    def reboot(self, cause):
        self.notify("r %d reboot cause=%d" % (self.t, cause))
        raise Reset(cause)

    def notify(self, text):
        if self.rig is not None:
            self.rig.send(text)

    def reply(self, text):
        if text is not None and self.rig is not None:
            self.rig.send(text)


def make():
    return Board()

