"""The parts of an MCU board's `Board` (firmware/hal.py) that every board does alike.

BoardBase builds the board's parts in one fixed order (the laser before the
inputs, whose interrupts call laser.off()), and gives ticks_us(), the shared
wait() loop (shared/softarm.py) and the reset_cause()/reboot() pair:
reboot() drops the laser, notes its cause where it survives machine.reset()
and resets; reset_cause() returns that note once (and clears it), else the
port's own reason. Where the note is kept is the board's (_take_note(),
_keep_note()); Mem32NoteBoard keeps it in a 32-bit register.

Each board's Board keeps what differs: its set-up before the parts (clock,
RTC, port version), its part classes, where the note is kept, and board.py's
docstring saying what its timing guarantees and how it knows.
"""
import machine
import time
from micropython import const

import mcu
import softarm
from filestore import FOLDER, FileStore
from storeguard import StoreGuard

_CAUSE_MAGIC = const(0x1A5E0000)  # upper half marks a cause written by reboot()


class BoardBase:
    # Set by each board's Board.
    name: str
    limits: dict  # the board's LIMITS
    settings: dict  # the board's SETTINGS

    def __init__(self, encoder, laser, inputs, indicator_pin, link, store_folder=FOLDER):
        """Make the parts, in this order: encoder(), laser(encoder),
        inputs(board), the indicator on indicator_pin, link(), the store
        (_make_store(store_folder), behind storeguard.StoreGuard), the
        watchdog (started later by the core)."""
        self.woken = False
        self.turn = mcu.Turn()  # wait() returns when the encoder changes direction
        self.encoder = encoder()
        self.laser = laser(self.encoder)
        self.inputs = inputs(self)
        self.laser.watch(self.inputs)  # enable(True) refuses while a trip is latched
        self.indicator = mcu.Indicator(indicator_pin)
        self.link = link()
        self.store = StoreGuard(self._make_store(store_folder), self.laser)  # LASER_EN low while writing
        self.wdt = mcu.Wdt()

    def ticks_us(self):
        return time.ticks_us()

    def _make_store(self, store_folder):
        """The board's non-volatile store (hal: read/write of two slots);
        BoardBase wraps it in a StoreGuard."""
        return FileStore(store_folder, legacy="")  # an older firmware's slots are in the root

    def wait(self, deadline_us):
        """Spin until the deadline or an event, letting laser.check() fire the
        armed pulse (or poll the board's timers) each pass."""
        softarm.wait(self, deadline_us)

    def reset_cause(self):
        """hal.RESET_*: the cause reboot() noted, once; else the port's reason."""
        cause = self._take_note()
        return self._port_cause() if cause is None else cause

    def reboot(self, cause):
        self.laser.off()
        self._keep_note(cause)
        machine.reset()

    def _port_cause(self):
        """hal.RESET_* from machine.reset_cause() (rp2 refines a watchdog
        reset; stm32 and esp32 name their other causes, mcu.cause_of)."""
        return mcu.cause_of(machine.reset_cause())

    def _take_note(self):
        """The cause reboot() noted, cleared so it is reported once; None if none."""
        raise NotImplementedError

    def _keep_note(self, cause):
        """Keep cause where it survives machine.reset()."""
        raise NotImplementedError


class Mem32NoteBoard(BoardBase):
    """reboot()'s cause kept in the 32-bit register at _note_addr, tagged with
    _CAUSE_MAGIC in the upper half."""
    _note_addr: int  # set by the board: a register that survives machine.reset()

    def _take_note(self):
        note = machine.mem32[self._note_addr]
        machine.mem32[self._note_addr] = 0
        if note & 0xFFFF0000 == _CAUSE_MAGIC:
            return note & 0xFFFF
        return None

    def _keep_note(self, cause):
        machine.mem32[self._note_addr] = _CAUSE_MAGIC | cause
