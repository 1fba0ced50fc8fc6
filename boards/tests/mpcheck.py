"""Helpers for the board tests that run inside the MicroPython Unix port.

`use(board)` puts the fakes, the firmware core, the shared modules and the
board folder on sys.path (fakes first, so `machine` is the fake) and tells
the fakes which port they stand for. `run(ns)`
calls every function named test_* and prints one line per result; the
process exits 1 when any failed, so the pytest driver sees it.
"""
import sys

ROOT = sys.path[0] + "/../.."

sys.path.insert(0, ROOT + "/boards")
import table  # noqa: E402 - the board table

sys.path.pop(0)  # boards/ holds folders named like the port modules


def use(board):
    for p in (ROOT + "/boards/" + board, ROOT + "/boards/shared", ROOT + "/firmware", ROOT + "/boards/fakes"):
        sys.path.insert(0, p)
    if board in table.BOARDS:
        import fakeport

        fakeport.NAME = table.BOARDS[board]["port"]  # before the board imports machine: the fakes offer its names
    if board == "stm32":
        import machine
        import backupstore

        machine.mem32[backupstore.PWR_CSR] = backupstore.BRR  # the backup regulator reports ready


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def eq(got, want, what):
    if got != want:
        raise Failed("%s: got %r, want %r" % (what, got, want))


def trip_after_due(arm, pin):
    """Make the interlock `pin` open (its IRQ fires) right after each
    SoftArm.due() check of `arm`: a trip landing inside the fire path."""
    due = arm.due

    def due_then_trip(t, count):
        r = due(t, count)
        pin.drive(0)
        return r

    arm.due = due_then_trip


def short_opening(b, en, door, close_all):
    """An interlock open for less than one control step: the trip is latched
    (SR-4). close_all() closes every interlock; en, door are fake Pins."""
    close_all()
    b.inputs.read()  # the core has seen every interlock closed
    b.laser.enable(True)
    eq(en.value(), 1, "enabled with every interlock closed")
    door.drive(0)
    eq(en.value(), 0, "the IRQ dropped the enable")
    door.drive(1)  # closed again before the core looked
    b.laser.enable(True)
    eq(en.value(), 0, "enable refused while the trip waits for the core")
    eq(b.inputs.read() & 2, 0, "the core's next read sees the door open")
    eq(b.inputs.read() & 2, 2, "reported once: the read after sees it closed")
    b.laser.enable(True)
    eq(en.value(), 1, "enable allowed once the core has taken the trip")


def trip_during_flash_write(b, en, door, close_all, progsize):
    """An interlock opening and closing while a store write masks interrupts:
    its IRQ runs after the write, and the store's guard must not raise
    LASER_EN again (SR-4). `progsize`: the littlefs program size of the board."""
    close_all()
    b.inputs.read()
    b.laser.enable(True)
    dev = FlashDev(32, 45_000, 400)

    def blip():
        if door.level:
            door.drive(0)
            door.drive(1)

    def write():
        dev.on_op = blip
        b.store.write(0, b"x")

    on_flash(dev, progsize, write)
    eq(en.value(), 0, "the enable stays low after the write")
    eq(b.inputs.read() & 2, 0, "the core's next read sees the door open")


def store_writes_under_the_watchdog(name, b, en, close_all, erase_us, prog_us, progsize):
    """Flash writes mask every interrupt: LASER_EN is low during each, and the
    watchdog outlasts the longest write (2000 writes through the board's own
    store on littlefs, every erase and program at its datasheet maximum)."""
    close_all()
    b.inputs.read()
    b.laser.enable(True)
    dev = FlashDev(32, erase_us, prog_us)
    worst_us, erases, progs = store_under_flash(b, dev, progsize, en, 2000)
    period_us = b.settings["control_period_us"]
    print("INFO %s store: 2000 writes; the longest: %d erases + %d programs = %d ms at the datasheet maxima"
          % (name, erases, progs, worst_us // 1000))
    check(worst_us + 2 * period_us <= b.settings["wdt_timeout_ms"] * 1000, "watchdog above the worst write")


class FlashDev:
    """A flash chip as littlefs sees it (the extended block-device interface
    of rp2.Flash and esp32.Partition): each erase and each program masks
    interrupts for the given time (machine.flash_write, virtual clock, so
    the fake watchdog can bite), and on_op() runs inside, so a test can look
    at the pins, or drive them, while the flash is busy. Counts erases and
    page programs."""

    def __init__(self, blocks, erase_us, prog_us, block=4096):
        self.data = bytearray(blocks * block)
        self.block = block
        self.erase_us = erase_us
        self.prog_us = prog_us
        self.erases = 0
        self.progs = 0
        self.on_op = None

    def _busy(self, us):
        import machine

        machine.flash_write(us, self.on_op)

    def readblocks(self, n, buf, off=0):
        a = n * self.block + off
        buf[:] = self.data[a : a + len(buf)]

    def writeblocks(self, n, buf, off=None):
        if off is None:
            self.ioctl(6, n)
            off = 0
        a = n * self.block + off
        self.data[a : a + len(buf)] = buf
        pages = (off % 256 + len(buf) + 255) // 256  # the flash programs 256-byte pages
        self.progs += pages
        self._busy(self.prog_us * pages)

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.block
        if op == 5:
            return self.block
        if op == 6:
            a = arg * self.block
            self.data[a : a + self.block] = b"\xff" * self.block
            self.erases += 1
            self._busy(self.erase_us)
        return 0


def on_flash(dev, progsize, fn):
    """Run fn() with a littlefs on dev mounted as the current folder, as the
    board's own filesystem is (rp2: progsize 256, esp32: 32)."""
    import os
    import vfs

    vfs.VfsLfs2.mkfs(dev, progsize=progsize)
    vfs.mount(vfs.VfsLfs2(dev, progsize=progsize), "/flash")
    cwd = os.getcwd()
    os.chdir("/flash")
    try:
        return fn()
    finally:
        os.chdir(cwd)
        vfs.umount("/flash")


def store_under_flash(b, dev, progsize, en_pin, writes):
    """The board's store written `writes` times on dev with the watchdog
    started at the board's timeout and fed before each write, as the core
    feeds it every loop, with LASER_EN high before each. Checks LASER_EN is
    low during every flash operation and high again after each write;
    returns the longest write: [us of virtual time, erases, programs]. A
    bite raises machine.Reset."""
    import machine

    seen_high = []

    def run():
        dev.on_op = lambda: en_pin.value() and seen_high.append(1)
        b.wdt.start(b.settings["wdt_timeout_ms"])
        worst = [0, 0, 0]  # us, erases, programs: the longest write
        for i in range(writes):
            b.wdt.feed()
            check(en_pin.value() == 1, "enabled before write %d" % i)
            t0, e0, p0 = machine.now_us(), dev.erases, dev.progs
            b.store.write(i & 1, bytes((i & 0xFF,)) * 60)
            if machine.now_us() - t0 > worst[0]:
                worst = [machine.now_us() - t0, dev.erases - e0, dev.progs - p0]
            check(en_pin.value() == 1, "enabled again after write %d" % i)
        return worst

    try:
        worst = on_flash(dev, progsize, run)
    finally:
        machine.watchdog_off()
    eq(len(seen_high), 0, "flash operations with LASER_EN high")
    return worst


def starts_with_enable_low(make, en):
    """LASER_EN is driven low when the board is made, whatever its level
    before (a soft reset keeps the pin's output level) (SR-1)."""
    en.value(1)
    make()
    eq(en.value(), 0, "enable low once the board is made")


def enable_refused_while_open(b, en, door, close_all):
    """An interlock open (its trip already taken by the core) keeps LASER_EN
    low: enable(True) looks at the pins, not only at the latched trips (SR-2)."""
    close_all()
    b.inputs.read()
    door.drive(0)
    eq(b.inputs.read() & 2, 0, "the core has taken the door opening")
    b.laser.enable(True)
    eq(en.value(), 0, "enable refused with the door open")


def pulse_outside_limits_refused(b):
    """laser.configure() checks the board's own hard limits (SR-15): the core's
    program check is not the only one."""
    lim = b.limits
    w_min, w_max, p_max = lim["width_us_min"], lim["width_us_max"], lim["power_w_max"]
    for width_us, power_w in ((w_min - 1, p_max), (w_max + 1, 0), (w_min, p_max + 1), (w_max, -1)):
        try:
            b.laser.configure(width_us, power_w)
            check(False, "%d us at %d W configured" % (width_us, power_w))
        except ValueError:
            pass
    b.laser.configure(w_min, p_max)
    b.laser.configure(w_max, 0)


def watchdog_bites_at_its_timeout(b):
    """wdt.start() starts the chip's watchdog at the timeout asked for (SR-11)."""
    import machine

    machine.watchdog_off()  # an earlier test's
    try:
        b.wdt.start(100)
        b.wdt.feed()
        machine.flash_write(90_000)  # unfed 90 ms: no bite yet
        b.wdt.feed()
        try:
            machine.flash_write(101_000)
            check(False, "unfed 101 ms against a 100 ms watchdog")
        except machine.Reset:
            pass
    finally:
        machine.watchdog_off()


def store_write_keeps_enable_low(b, en, close_all, progsize=0):
    """A store write raises LASER_EN again only if it was high before: a
    write while the core holds the enable low leaves it low (SR-2).
    `progsize`: the littlefs program size of a board whose store is on flash."""
    close_all()
    b.inputs.read()
    b.laser.enable(False)

    def write():
        b.store.write(0, b"x")

    if progsize:
        on_flash(FlashDev(32, 0, 0), progsize, write)
    else:
        write()
    eq(en.value(), 0, "enable still low after the write")


def reboot_drops_enable_and_notes_once(b, en, close_all):
    """reboot() drops LASER_EN before it resets (SR-1), and its note is read
    once: the boot after reads the port's own cause, so a later watchdog bite
    or crash is not taken for the noted cause (SR-11)."""
    import hal
    import machine

    close_all()
    b.inputs.read()
    b.laser.enable(True)
    eq(en.value(), 1, "enabled before the reboot")
    try:
        b.reboot(hal.RESET_SOFT)
        check(False, "reboot returned")
    except machine.Reset:
        pass
    eq(en.value(), 0, "enable low at the reset")
    machine.reset_cause_value = machine.PWRON_RESET
    eq(b.reset_cause(), hal.RESET_SOFT, "the noted cause")
    eq(b.reset_cause(), hal.RESET_POWER, "the note is cleared once read: the next boot reads the port's cause")


def soft_arm_waits(b, en, close_all, pulses):
    """rp2 and esp32 fire an armed pulse only once its not_before time has
    come (SR-7), and never after disarm() (SR-2). `pulses()`: how many pulses
    the board has started."""
    import time

    close_all()
    b.inputs.read()
    b.laser.enable(True)
    eq(en.value(), 1, "enabled")
    b.link.any = lambda: False  # stdin of the test process is not the link
    before = pulses()
    now = time.ticks_us()
    b.laser.arm(time.ticks_add(now, 10_000_000), 0, 0)  # time only, 10 s ahead
    b.wait(time.ticks_add(now, 2_000))
    check(b.laser.armed(), "still armed before not_before")
    eq(pulses(), before, "no pulse before not_before")
    b.laser.disarm()
    b.laser.arm(now, 0, 0)  # due at once
    b.laser.disarm()
    b.wait(time.ticks_add(time.ticks_us(), 2_000))
    check(not b.laser.armed(), "disarmed")
    eq(pulses(), before, "no pulse after disarm()")
    b.link.any = lambda: True  # a byte (maybe '!') waits on the link
    b.laser.arm(time.ticks_us(), 0, 0)  # due at once
    b.wait(time.ticks_add(time.ticks_us(), 2_000))
    check(b.laser.armed(), "still armed while a byte waits on the link")
    eq(pulses(), before, "no pulse fired before the loop has read the link")
    b.laser.disarm()
    b.link.any = lambda: False


def pulse_energy_read_after_the_pulse(b, en, close_all, adc, pd_reset):
    """The photodiode integrator is read after the pulse has ended (width
    plus a settle time), on its 12-bit scale, then discharged through
    PD_RESET, so the next reading holds one pulse only (SR-10). The steps are
    logged, not timed: laserbase's time module is a recorder for the pulse."""
    import time
    import laserbase

    log = []

    class Clock:
        ticks_us = time.ticks_us
        ticks_diff = time.ticks_diff
        ticks_add = time.ticks_add

        def sleep_us(us):
            log.append(("sleep", us))

    close_all()
    b.inputs.read()
    width_us = b.limits["width_us_max"]
    b.laser.configure(width_us, b.limits["power_w_max"])
    b.laser.enable(True)
    b.link.any = lambda: False
    adc.raw = 1000 << 4  # 1000 integrator steps of 4095, on the 16-bit read_u16() scale
    adc.read_u16 = lambda: log.append(("adc",)) or adc.raw
    pd_reset.value = lambda v=None: log.append(("pd_reset", v))
    laserbase.time = Clock
    try:
        now = time.ticks_us()
        b.laser.arm(now, 0, 0)
        b.wait(time.ticks_add(now, 100_000))
    finally:
        laserbase.time = time
        del adc.read_u16
        del pd_reset.value
        adc.raw = 0
    rec = [0, 0, 0]
    check(b.laser.take_pulse(rec), "pulse recorded")
    eq(rec[2], 1000 * b.laser._pd_uj_per_lsb, "energy of 1000 integrator steps")
    check(log and log[0][0] == "sleep" and log[0][1] > width_us,
          "the pulse of %d us has ended before the read: %r" % (width_us, log))
    eq(log[1:], [("adc",), ("pd_reset", 1), ("sleep", b.laser._pd_reset_us), ("pd_reset", 0)],
       "read, then discharge")


def run(ns):
    failed = 0
    for name in sorted(ns):
        if name.startswith("test_"):
            try:
                ns[name]()
                print("PASS", name)
            except Exception as e:  # noqa: BLE001 - report every failure, then exit 1
                failed += 1
                print("FAIL", name, type(e).__name__, e)
    if failed:
        sys.exit(1)
