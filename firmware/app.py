"""Firmware entry point, called by a board's main.py with the board object."""
import micropython

import hal
from controller import Controller
from protocol import checksum


def main(board):
    # The serial line carries the protocol: a 0x03 in it is data, not Ctrl-C.
    micropython.kbd_intr(-1)
    try:
        Controller(board).run()
    except Exception as e:  # noqa: BLE001 - any failure ends in laser-off (SR-1)
        board.laser.off()
        try:
            text = b"ev %d exception %s" % (board.ticks_us() // 1000, type(e).__name__.encode())
            board.link.write(text + b"*%02X\n" % checksum(text, len(text)))
        except Exception:  # noqa: BLE001 - the report is best effort, the reset is not
            pass
        board.reboot(hal.RESET_EXCEPTION)
