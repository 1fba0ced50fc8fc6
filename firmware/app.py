"""Firmware entry point, called by a board's main.py with the board object."""
import micropython

import hal
from controller import Controller
from report import Reporter


def main(board):
    # The serial line carries the protocol: a 0x03 in it is data, not Ctrl-C.
    micropython.kbd_intr(-1)
    rep = None
    try:
        c = Controller(board)
        rep = c.rep
        c.run()
    except Exception as e:  # noqa: BLE001 - any failure ends in laser-off (SR-1)
        board.laser.off()
        try:
            # What is queued, then the exception, as far as the link takes it now.
            rep = rep or Reporter(board.link)
            t_ms = board.ticks_us() // 1000
            rep.ev(t_ms, "exception", type(e).__name__)
            rep.flush(t_ms)
        except Exception:  # noqa: BLE001 - the report is best effort, the reset is not
            pass
        board.reboot(hal.RESET_EXCEPTION)
