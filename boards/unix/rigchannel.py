"""The simulated board's rig channel: the test bench's side door (docs/rig.md).

Text lines over a Unix socket. Each command gets one reply, `= value` or
`? reason`; the board also sends notifications (`o`, `p`, `r` lines) at any
time. Commands act on the board at its current time.
"""
import gc
import socket

import hal


class RigChannel:
    def __init__(self, board, path):
        self._b = board
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(b"\x01\x00" + path.encode() + b"\x00")  # sockaddr_un
        self._buf = b""

    def send(self, text):
        self.sock.write(text.encode() + b"\n")

    def serve(self):
        """Read what the host sent and run every complete command."""
        data = self.sock.recv(512)
        if not data:
            raise SystemExit(0)  # the host went away: the bench is gone
        buf = self._buf + data
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            self._buf = buf  # a command may reset the board: keep the rest
            words = line.decode().split()
            if not words:
                continue
            handler = COMMANDS.get(words[0])
            try:
                reply = handler(self._b, words[1:]) if handler else "? unknown rig command " + words[0]
            except (ValueError, IndexError) as e:
                reply = "? %s %s" % (words[0], e)
            self._b.reply(reply)
        self._buf = buf


def adv(b, w):
    if not b.virtual:
        return "? adv needs the virtual clock"
    b.until = b.t + int(w[0])
    return None  # answered with '= t' when reached


def now(b, w):
    return "= %d" % b.stamp()


def stats(b, w):
    gc.collect()
    out = "= loops=%d heap_bytes=%d board_heap_bytes=%d loop_max_us=%d" % (
        b.loops, gc.mem_alloc(), b.heap_base, b.loop_max_us)
    b.loop_max_us = 0  # the next `stats` reports the longest period since this one
    return out


def info(b, w):
    return "= clock=%s counts_per_mm=%d t=%d" % (
        "virtual" if b.virtual else "real", b.settings["counts_per_mm"], b.t)


def _in(b, w):
    # The firmware's input table; imported here, not at the top, so that its
    # heap counts as the firmware's (main.py measures the simulator's own first).
    from interlocks import NAMES

    bit = 1 << NAMES.index(w[0])
    b.stamp()
    b.inputs.set(bit, w[1] == "1")
    return "= %d" % b.t


def kf(b, w):
    b.encoder.add(int(w[0]), int(w[1]))
    return "= %d" % len(b.encoder.kt)


def hold(b, w):
    b.encoder.clear(int(w[0]) if w else b.encoder.count())
    return "= %d" % b.encoder.count()


def pos(b, w):
    return "= %d" % b.encoder.count()


def pd(b, w):
    las = b.laser
    if w[0] == "gain":
        las.gain_pct = int(w[1])
    elif w[0] == "drop":
        las.dropouts = int(w[1])
    elif w[0] == "stuck":
        las.stuck = w[1] == "1"
    else:
        return "? pd gain|drop|stuck"
    return "= ok"


def stall(b, w):
    b.stall_until = b.t + int(w[0])
    return "= %d" % b.stall_until


def crash(b, w):
    b.crash = True
    return "= ok"


def _reset(b, cause, what):
    b.reply("= ok")
    b.reset_now(cause, what)


def soft(b, w):
    # A soft reset: the firmware restarts, output latches keep their state,
    # so only the firmware's own boot can drive them off (SR-1).
    _reset(b, hal.RESET_SOFT, "soft")


def power(b, w):
    b.laser.off()
    _reset(b, hal.RESET_POWER, "power")


def tear(b, w):
    b.store.cut = ("data", "power", 0)
    return "= ok"


def cut(b, w):
    if w[0] not in ("data", "swap") or w[1] not in b.store.ACTIONS:
        return "? cut data|swap power|soft|error|kill|stall <us>"
    b.store.cut = (w[0], w[1], int(w[2]) if w[1] == "stall" else 0)
    return "= ok"


def scramble(b, w):
    b.store.write(0, b"\x5a" * hal.STORE_BLOCK)  # both slots unreadable
    b.store.write(1, b"\x5a" * hal.STORE_BLOCK)
    return "= ok"


def link(b, w):
    b.link.up = w[0] == "1"
    return "= ok"


# command -> handler; a handler is named as its command (one interned name for
# both: the simulator's names share the heap's name pool with the firmware's)
COMMANDS = {
    "adv": adv, "now": now, "stats": stats, "info": info, "in": _in, "kf": kf, "hold": hold,
    "pos": pos, "pd": pd, "stall": stall, "crash": crash, "soft": soft, "power": power,
    "tear": tear, "cut": cut, "scramble": scramble, "link": link,
}
