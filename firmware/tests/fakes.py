"""Small fakes of a board for firmware unit tests (only what a test needs)."""
from array import array

import hal


class Clock:
    def __init__(self):
        self.t = 0

    def ticks_us(self):
        return self.t


class FakeInputs:
    def __init__(self, bits=0x3F):
        self.bits = bits

    def read(self):
        return self.bits


class FakeBoard(Clock):
    def __init__(self, bits=0x3F):
        super().__init__()
        self.inputs = FakeInputs(bits)


class MemStore:
    """Two blocks in RAM; `tear` makes the next write stop half way."""

    def __init__(self):
        self.blocks = [None, None]
        self.writes = 0
        self.tear = False

    def read(self, slot):
        return self.blocks[slot]

    def write(self, slot, data):
        self.writes += 1
        data = bytes(data) + b"\xff" * (hal.STORE_BLOCK - len(data))
        if self.tear:
            self.tear = False
            old = self.blocks[slot] or b"\xff" * hal.STORE_BLOCK
            self.blocks[slot] = data[: len(data) // 4] + old[len(data) // 4 :]
            raise OSError("power lost during write")
        self.blocks[slot] = data


def record():
    return array("i", (0, 0, 0))


class FakeLaser:
    """Fires an armed pulse when `hardware(t, pos)` finds its condition met."""

    pd_step_uj = 1

    def __init__(self):
        self.enabled = False
        self.is_armed = False
        self.nb = self.target = self.dir = 0
        self.rec = array("i", (0, 0, 0))
        self.pending = False
        self.uj = 360000
        self.fired = 0
        self.arms = 0  # arm() calls

    def off(self):
        self.enabled = False
        self.is_armed = False

    def enable(self, on):
        self.enabled = on

    def configure(self, width_us, power_w):
        self.uj = width_us * power_w

    def arm(self, nb, target, d):
        self.nb, self.target, self.dir = nb, target, d
        self.is_armed = True
        self.arms += 1

    def disarm(self):
        self.is_armed = False

    def armed(self):
        return self.is_armed

    def hardware(self, t, pos):
        if not (self.is_armed and self.enabled) or t < self.nb:
            return
        if self.dir and (pos - self.target) * self.dir < 0:
            return
        self.is_armed = False
        self.rec[0], self.rec[1], self.rec[2] = t, pos, self.uj
        self.pending = True
        self.fired += 1

    def take_pulse(self, rec):
        if not self.pending:
            return False
        self.pending = False
        rec[0], rec[1], rec[2] = self.rec[0], self.rec[1], self.rec[2]
        return True

    def stray_light(self):
        return False


class Part:
    """Any HAL part whose calls only need to succeed."""

    def __init__(self, **values):
        for k, v in values.items():
            setattr(self, k, v)

    def set(self, on):
        self.on = on

    def start(self, ms):
        pass

    def feed(self):
        pass

    def write(self, data):
        self.out.append(bytes(data))
        return len(data)

    def readinto(self, buf):
        return 0

    def count(self):
        return self.pos


class FullBoard(FakeBoard):
    """Enough of a board to build a Controller in a unit test."""

    name = "fake"
    settings = {"ready_delay_ms": 2000, "debounce_ms": 20, "counts_per_mm": 20, "deadband_counts": 4,
                "wdt_timeout_ms": 200, "control_period_us": 2000, "energy_tol_pct": 20}

    def __init__(self, limits):
        super().__init__()
        self.limits = limits
        self.laser = FakeLaser()
        self.encoder = Part(pos=0)
        self.indicator = Part(on=False)
        self.link = Part(out=[])
        self.store = MemStore()
        self.wdt = Part()

    def reset_cause(self):
        return hal.RESET_POWER

    def wait(self, deadline):
        pass
