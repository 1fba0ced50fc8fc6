// Emulated RP2040 bench: boots a UF2 in rp2040js and carries its USB CDC on
// this process's stdin/stdout (raw bytes). Diagnostics go to stderr as lines
// starting with "emu:". The host side (host/handpiece/rp2emu.py) puts a pty
// in front of the pipes so the host opens the device like /dev/ttyACM0.
//
//   node emu.mjs IMAGE.uf2 [--in GPIO=0|1 ...] [--trace GPIO ...]
//                [--rig SOCKET --rig-pins JSON [--counts-per-mm N] [--measure]]
//
// --rig connects to the host's Unix socket and serves the rig channel there
// (RigChannel below); --rig-pins maps the rig's names to GPIOs.
// --in sets the level the carrier board holds a GPIO input at from power-on
// (rp2040js does not model pull resistors or open inputs; they read low).
// --trace logs every level change of that GPIO's pad to stderr as
// "emu: edge GPIO LEVEL T_NS" (emulated nanoseconds since the first power-on).
// --measure adds the bench's stamps and heap census to the rig channel (measure.mjs).
//
// Differences from the stock rp2040js Simulator, each needed by the firmware:
// - PIO state machines run in lockstep with the emulated system clock (clock
//   divider and delay cycles honoured); stock rp2040js runs them in bursts
//   unrelated to emulated time.
// - A watchdog timeout or trigger resets the chip: flash, the watchdog's
//   scratch registers and its reset reason survive, RAM and peripherals do not.
// - The QSPI flash takes the boot ROM's erase and program commands (rp2040js
//   only models reads), so littlefs and the session store can write.
// - Host bytes wait in a queue and enter the CDC's 512-byte FIFO only while it
//   has room: rp2040js drops bytes pushed into a full FIFO.
// - A power cycle (the rig's `power`) starts a fresh chip over the kept flash.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'node:net';
import { Simulator, USBCDC, ConsoleLogger, LogLevel } from 'rp2040js';
import { installMeasure } from './measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const FLASH_BASE = 0x10000000;
const CYCLE_NS = 8; // rp2040js runs the core at 125 MHz
const CDC_FIFO_BYTES = 512;
// rp2040js keys its peripherals by address >>> 12
const WATCHDOG_BASE_HI = 0x40058;
const IO_BANK0_BASE_HI = 0x40014;
const IO_QSPI_BASE_HI = 0x40018;
const SSI_BASE_HI = 0x18000;
const PADS_BANK0_BASE_HI = 0x4001c;
const SLICE_WALL_MS = 20; // run this long between turns of the event loop (I/O)

const UF2_MAGIC0 = 0x0a324655;
const UF2_MAGIC1 = 0x9e5d5157;
const UF2_MAGIC_END = 0x0ab16f30;

function log(text) {
  process.stderr.write(`emu: ${text}\n`);
}

function die(text) {
  log(text);
  process.exit(2);
}

/** The RP2040 B1 boot ROM (see BOOTROM.md) as 4,096 little-endian words. */
export function loadBootrom() {
  const bytes = readFileSync(join(HERE, 'bootrom-b1.bin'));
  if (bytes.length !== 16384) {
    throw new Error(`bootrom-b1.bin is ${bytes.length} bytes, expected 16384`);
  }
  const words = new Uint32Array(4096);
  for (let i = 0; i < 4096; i++) words[i] = bytes.readUInt32LE(i * 4);
  return words;
}

/** Write a UF2's payloads into a flash array (index 0 = 0x10000000). */
export function loadUF2(bytes, flash) {
  if (bytes.length === 0 || bytes.length % 512) {
    throw new Error(`UF2 size ${bytes.length} is not a positive multiple of 512`);
  }
  for (let off = 0; off < bytes.length; off += 512) {
    const m0 = bytes.readUInt32LE(off);
    const m1 = bytes.readUInt32LE(off + 4);
    const end = bytes.readUInt32LE(off + 508);
    if (m0 !== UF2_MAGIC0 || m1 !== UF2_MAGIC1 || end !== UF2_MAGIC_END) {
      throw new Error(`UF2 block ${off / 512} has bad magic numbers`);
    }
    const addr = bytes.readUInt32LE(off + 12);
    const size = bytes.readUInt32LE(off + 16);
    if (size > 476 || addr < FLASH_BASE || addr + size > FLASH_BASE + flash.length) {
      throw new Error(`UF2 block ${off / 512} writes ${size} bytes at 0x${addr.toString(16)}, outside flash`);
    }
    flash.set(bytes.subarray(off + 32, off + 32 + size), addr - FLASH_BASE);
  }
}

const INOVER = [(v) => v, (v) => !v, () => false, () => true]; // GPIO_CTRL INOVER: normal, invert, low, high

/**
 * On the chip a pad's input buffer sees the level the pad drives: GPIO_IN
 * (MicroPython's Pin.value()) reads an output back. rp2040js reads only the
 * level set from outside, so an output always read 0 and the firmware, which
 * checks LASER_EN with Pin.value() before each pulse and before raising it
 * again after a store write, never fired.
 */
function padLoopback(pin) {
  Object.defineProperty(pin, 'inputValue', {
    get() {
      const level = pin.outputEnable ? pin.outputValue : pin.rawInputValue;
      return INOVER[pin.inputOverride](level && pin.inputEnable);
    },
  });
}

/** One power-on of the chip: a fresh rp2040js instance over the kept flash. */
class Chip {
  constructor(bench, bootrom, flash, watchdog, inputs, traced) {
    this.bench = bench;
    this.sim = new Simulator();
    const mcu = (this.mcu = this.sim.rp2040);
    mcu.logger = new ConsoleLogger(LogLevel.Error);
    this.watchdog = mcu.peripherals[WATCHDOG_BASE_HI];
    mcu.loadBootrom(bootrom); // also erases the flash array: restore it after
    mcu.flash.set(flash);
    if (watchdog) {
      this.watchdog.scratchData.set(watchdog.scratch);
      this.watchdog.reason = watchdog.reason;
    }
    this.watchdog.onWatchdogTrigger = () => {
      // rp2040js 1.4.1 re-arms the expired watchdog alarm at the same instant
      // (an endless loop in the clock): stop it, the chip resets anyway.
      this.watchdog.alarm.enable = false;
      this.watchdog.timer.enable = false;
      bench.requestReset('watchdog');
    };
    this.pioStepNs = -1; // while a PIO step runs: its time on the chip clock
    this.blocks = mcu.pio.map((pio) => new PioBlock(this, pio));
    this.spiFlash = new SpiFlash(mcu);
    for (const base of [IO_BANK0_BASE_HI, PADS_BANK0_BASE_HI]) {
      // Pin function and input-enable changes alter what a state machine reads.
      const periph = mcu.peripherals[base];
      const write = periph.writeUint32Atomic.bind(periph);
      periph.writeUint32Atomic = (offset, value, type) => {
        this.wakePio();
        write(offset, value, type);
      };
    }
    for (const pin of mcu.gpio) padLoopback(pin);
    this.cdc = new USBCDC(mcu.usbCtrl);
    this.cdc.onSerialData = (data) => bench.toHost(data);
    this.cdc.onDeviceConnected = () => log(`usb connected t_us=${Math.round(bench.nowNs() / 1000)}`);
    for (const [gpio, level] of inputs) this.setInput(gpio, level);
    for (const gpio of traced) {
      mcu.gpio[gpio].addListener((state) => {
        const level = state === 1 ? 1 : state === 0 ? 0 : 'z'; // GPIOPinState High / Low / an input
        log(`edge ${gpio} ${level} ${Math.round(this.edgeNs())}`);
      });
    }
    for (const [gpio, fn] of bench.watchers) this.watch(gpio, fn);
    mcu.core.PC = FLASH_BASE; // as the boot ROM would after its flash checks
  }

  /** Call fn(level, t_ns) on each change of a pin's level. */
  watch(gpio, fn) {
    // An undriven output reads low: the carrier board pulls LASER_EN/FIRE down.
    this.mcu.gpio[gpio].addListener((state) => fn(state === 1 ? 1 : 0, this.edgeNs()));
  }

  /** Emulated ns (since first power-on) of a pin change happening now. */
  edgeNs() {
    return this.bench.offsetNs + (this.pioStepNs >= 0 ? this.pioStepNs : this.sim.clock.nanos);
  }

  /** Run the PIO state machines up to the core's time nowNs. */
  stepPio(nowNs) {
    for (const blk of this.blocks) if (!blk.pio.stopped && !blk.parked) blk.step(nowNs);
  }

  /** Chip-clock nanoseconds of the next PIO step, or Infinity when none is due. */
  nextPioNs() {
    let next = Infinity;
    for (const blk of this.blocks) {
      if (blk.pio.stopped || blk.parked) continue;
      for (const sm of blk.pio.machines) if (sm.enabled && sm.nextNs < next) next = sm.nextNs;
    }
    return next;
  }

  /** Bring every parked state machine back to stepping, caught up to now. */
  wakePio() {
    const now = this.sim.clock.nanos;
    for (const blk of this.blocks) blk.wake(now);
  }

  /** Set an input pin as the carrier board would drive it. */
  setInput(gpio, level) {
    this.wakePio();
    this.mcu.gpio[gpio].setInputValue(level);
  }
}

/**
 * A 25-series SPI NOR flash behind the SSI, for the boot ROM's flash routines:
 * they force chip select low through IO_QSPI, shift command bytes through the
 * SSI data register one at a time and raise chip select to end the command.
 * Write enable, page program (bits only go 1 -> 0, within one 256-byte page),
 * 4/32/64 KB and chip erase, status, read data and unique id are modelled;
 * erase and program take no time (status never reads busy). With chip select
 * not forced (the XIP boot stage) every byte reads back 0, as in rp2040js.
 */
class SpiFlash {
  constructor(mcu) {
    this.flash = mcu.flash;
    this.csLow = false;
    this.cmd = [];
    this.rx = [];
    this.wel = false;
    const ssi = mcu.peripherals[SSI_BASE_HI];
    const ssiRead = ssi.readUint32.bind(ssi);
    const ssiWrite = ssi.writeUint32.bind(ssi);
    ssi.readUint32 = (offset) => {
      if (offset === 0x28) return 0x06 | (this.rx.length ? 0x08 : 0); // SR: TFNF, TFE, RFNE
      if (offset === 0x24) return this.rx.length; // RXFLR
      if (offset === 0x60) return this.rx.length ? this.rx.shift() : 0; // DR0
      return ssiRead(offset);
    };
    ssi.writeUint32 = (offset, value) => {
      if (offset !== 0x60) return ssiWrite(offset, value);
      const b = this.csLow ? this.shift(value & 0xff) : 0;
      if (this.rx.length < 16) this.rx.push(b); // the SSI's RX FIFO drops on overflow
    };
    // IO_QSPI: kept as plain registers; GPIO_QSPI_SS_CTRL's OUTOVER drives chip select.
    const qspi = mcu.peripherals[IO_QSPI_BASE_HI];
    const regs = new Uint32Array(12);
    qspi.readUint32 = (offset) => (offset < 48 ? regs[offset >> 2] : 0);
    qspi.writeUint32 = (offset, value) => {
      if (offset >= 48) return;
      regs[offset >> 2] = value;
      if (offset === 0x0c) this.chipSelect(((value >>> 8) & 3) === 2);
    };
  }

  chipSelect(low) {
    if (low && !this.csLow) this.cmd = [];
    if (low !== this.csLow) this.rx = [];
    if (!low && this.csLow) this.execute();
    this.csLow = low;
  }

  /** The byte the flash returns while `b` is shifted in. */
  shift(b) {
    const { cmd } = this;
    cmd.push(b);
    const n = cmd.length - 1; // bytes before this one
    switch (cmd[0]) {
      case 0x05: // read status: never busy; write-enable latch
        return n ? (this.wel ? 0x02 : 0) : 0;
      case 0x03: // read data
        return n >= 4 ? this.flash[(this.address() + n - 4) % this.flash.length] : 0;
      case 0x4b: // unique id after 4 dummy bytes: a fixed made-up id
        return n >= 5 ? [0xe6, 0x60, 0x58, 0x38, 0x83, 0x4a, 0x31, 0x2c][(n - 5) & 7] : 0;
      case 0x9f: // JEDEC id: a 2 MB Winbond W25Q16
        return [0, 0xef, 0x40, 0x15][n] ?? 0;
      default:
        return 0;
    }
  }

  address() {
    return ((this.cmd[1] << 16) | (this.cmd[2] << 8) | this.cmd[3]) >>> 0;
  }

  execute() {
    const { cmd, flash } = this;
    if (!cmd.length) return;
    const op = cmd[0];
    if (op === 0x06) this.wel = true;
    else if (op === 0x04) this.wel = false;
    else if (this.wel && cmd.length >= 4 && (op === 0x02 || op === 0x20 || op === 0x52 || op === 0xd8)) {
      const addr = this.address() % flash.length;
      if (op === 0x02) {
        const page = addr & ~0xff;
        for (let i = 4; i < cmd.length; i++) flash[page + ((addr + i - 4) & 0xff)] &= cmd[i];
      } else {
        const size = op === 0x20 ? 4096 : op === 0x52 ? 32768 : 65536;
        const start = addr & ~(size - 1);
        flash.fill(0xff, start, start + size);
      }
      this.wel = false;
    } else if (this.wel && (op === 0xc7 || op === 0x60)) {
      flash.fill(0xff);
      this.wel = false;
    }
    this.cmd = [];
  }
}

// State that decides a state machine's future, compared to detect an idle loop.
const SIG_FIELDS = 16;
function signature(sm, pio, out) {
  out[0] = sm.pc;
  out[1] = sm.x;
  out[2] = sm.y;
  out[3] = sm.inputShiftReg;
  out[4] = sm.inputShiftCount;
  out[5] = sm.outputShiftReg;
  out[6] = sm.outputShiftCount;
  out[7] = sm.txFIFO.itemCount;
  out[8] = sm.rxFIFO.itemCount;
  out[9] = sm.waiting ? 1 : 0;
  out[10] = sm.execValid ? 1 : 0;
  out[11] = sm.execCtrl;
  out[12] = pio.irq;
  out[13] = pio.pinValues;
  out[14] = pio.pinDirections;
  out[15] = sm.waitDelay;
}

/**
 * One PIO block stepped in lockstep with the system clock. When it has a
 * single enabled state machine whose whole state recurs after a stretch with
 * no pin, IRQ or FIFO change, the block parks: the machine would only repeat
 * that loop, so it is not stepped until the core touches the block, a pin
 * input or pin setting changes; it then resumes from the last whole period,
 * exactly where stepping would have left it. Quadrature polling at the full
 * system clock costs nothing while the hand does not move.
 */
/**
 * SHIFTCTRL's FJOIN_TX (bit 30) / FJOIN_RX (bit 31): the joined FIFO is 8
 * deep and the other one has no room (rp2040js keeps both at 4). Changing
 * the join empties both, as on the chip. The rig's encoder SM joins its TX
 * FIFO: at 4 deep its refill loop blocked in put() for a whole run.
 */
function joinFifos(sm) {
  const join = sm.shiftCtrl >>> 30;
  if (join === (sm.fifoJoin ?? 0)) return;
  sm.fifoJoin = join;
  const Fifo = sm.txFIFO.constructor;
  sm.txFIFO = new Fifo(join === 1 ? 8 : join === 0 ? 4 : 0);
  sm.rxFIFO = new Fifo(join === 2 ? 8 : join === 0 ? 4 : 0);
}

class PioBlock {
  constructor(chip, pio) {
    this.chip = chip;
    this.pio = pio;
    this.parked = false;
    this.single = null; // the only enabled state machine, or null
    this.ref = new Int32Array(SIG_FIELDS);
    this.cur = new Int32Array(SIG_FIELDS);
    this.refNs = -1; // -1: no reference state taken
    this.parkNs = 0;
    this.periodNs = 0;
    pio.run = () => {}; // rp2040js' own free-running loop: replaced by step()
    for (const sm of pio.machines) sm.nextNs = 0;
    const read = pio.readUint32.bind(pio);
    const write = pio.writeUint32Atomic.bind(pio);
    pio.readUint32 = (offset) => {
      this.wake(chip.sim.clock.nanos);
      return read(offset); // an RX FIFO read changes the machine's state
    };
    pio.writeUint32Atomic = (offset, value, type) => {
      const now = chip.sim.clock.nanos;
      this.wake(now);
      const was = pio.machines.map((sm) => sm.enabled && !pio.stopped);
      write(offset, value, type);
      for (const sm of pio.machines) joinFifos(sm);
      this.single = null;
      let n = 0;
      pio.machines.forEach((sm, i) => {
        if (!sm.enabled) return;
        if (!was[i]) sm.nextNs = now; // starts now, not where it last stopped
        n += 1;
        this.single = sm;
      });
      if (n !== 1) this.single = null;
    };
  }

  wake(nowNs) {
    this.refNs = -1;
    if (!this.parked) return;
    this.parked = false;
    const sm = this.single;
    if (nowNs > this.parkNs) sm.nextNs = this.parkNs + Math.floor((nowNs - this.parkNs) / this.periodNs) * this.periodNs;
    if (!this.pio.stopped) this.step(nowNs);
  }

  step(nowNs) {
    const { pio, single } = this;
    for (const sm of pio.machines) {
      if (!sm.enabled) {
        sm.nextNs = nowNs;
        continue;
      }
      const cycleNs = ((sm.clockDivInt || 65536) + sm.clockDivFrac / 256) * CYCLE_NS;
      while (sm.nextNs <= nowNs) {
        const before = sm.cycles;
        this.chip.pioStepNs = sm.nextNs; // pin changes happen at the step's own time
        sm.step();
        pio.checkChangedPins();
        this.chip.pioStepNs = -1;
        sm.nextNs += Math.max(1, sm.cycles - before) * cycleNs;
        if (sm === single && this.watch(sm)) return;
      }
    }
  }

  /** True when the machine just completed an idle period and the block parked. */
  watch(sm) {
    const { ref, cur } = this;
    signature(sm, this.pio, cur);
    if (this.refNs >= 0) {
      // FIFO levels, waits, IRQ flags and pins must hold still for the whole period.
      let stable = true;
      for (let i = 7; i < SIG_FIELDS; i++) if (cur[i] !== ref[i]) stable = false;
      if (stable) {
        let recurred = true;
        for (let i = 0; i < 7; i++) if (cur[i] !== ref[i]) recurred = false;
        if (recurred) {
          this.parked = true;
          this.parkNs = sm.nextNs;
          this.periodNs = sm.nextNs - this.refNs;
          return true;
        }
        if (++this.watched < 64) return false;
      }
    }
    ref.set(cur);
    this.refNs = sm.nextNs;
    this.watched = 0;
    return false;
  }
}

export class Bench {
  constructor(uf2Bytes, inputs = new Map(), traced = []) {
    this.traced = traced; // GPIOs whose edges are logged
    this.watchers = []; // [GPIO, fn(level, t_ns)]: the rig's view of outputs
    this.waiters = []; // [t_ns, fn]: called once emulated time reaches t_ns
    this.inputs = inputs; // GPIO -> level the board holds it at
    this.bootrom = loadBootrom();
    const flash = new Uint8Array(16 * 1024 * 1024).fill(0xff);
    loadUF2(uf2Bytes, flash);
    this.offsetNs = 0; // emulated time before the current chip's power-on
    this.hostQueue = [];
    this.resetWhy = null;
    this.chip = new Chip(this, this.bootrom, flash, null, this.inputs, this.traced);
    this.onHostData = (data) => process.stdout.write(data);
  }

  nowNs() {
    return this.offsetNs + this.chip.sim.clock.nanos;
  }

  nowUs() {
    return Math.floor(this.nowNs() / 1000);
  }

  toHost(data) {
    this.onHostData(Buffer.from(data));
  }

  fromHost(bytes) {
    for (const b of bytes) this.hostQueue.push(b);
    this.feedCdc();
  }

  /** Move queued host bytes into the CDC FIFO while it has room. */
  feedCdc() {
    const { cdc } = this.chip;
    const q = this.hostQueue;
    let i = 0;
    while (i < q.length && cdc.txFIFO.itemCount < CDC_FIFO_BYTES - 1) cdc.sendSerialByte(q[i++]);
    if (i) q.splice(0, i);
  }

  requestReset(why) {
    this.resetWhy = why;
  }

  /** Call fn(level, t_ns) on each change of a pin's level, on this chip and after resets. */
  watch(gpio, fn) {
    this.watchers.push([gpio, fn]);
    this.chip.watch(gpio, fn);
  }

  /** Let `fn` run once emulated time reaches tNs (the rig's adv). */
  at(tNs, fn) {
    this.waiters.push([tNs, fn]);
    this.waiters.sort((a, b) => a[0] - b[0]);
  }

  /**
   * Reset the chip, RAM and peripherals fresh, flash kept. A watchdog reset
   * keeps the watchdog's scratch registers and reason; a power cycle does not.
   */
  reset() {
    const old = this.chip.mcu;
    const watchdog = this.resetWhy === 'watchdog'
      ? { scratch: this.chip.watchdog.scratchData.slice(), reason: this.chip.watchdog.reason }
      : null;
    if (this.onReset) this.onReset(this.resetWhy, this.nowNs());
    this.offsetNs = this.nowNs();
    log(`reset ${this.resetWhy} t_us=${Math.round(this.offsetNs / 1000)}`);
    this.resetWhy = null;
    this.chip = new Chip(this, this.bootrom, old.flash, watchdog, this.inputs, this.traced);
    if (this.onChip) this.onChip();
  }

  /** Run the emulation for up to SLICE_WALL_MS of wall time; false when the chip sleeps with nothing scheduled. */
  runSlice() {
    const wallEnd = performance.now() + SLICE_WALL_MS;
    while (performance.now() < wallEnd) {
      const { chip } = this;
      const { core } = chip.mcu;
      const clock = chip.sim.clock;
      const { waiters } = this;
      const stopAt = waiters.length ? waiters[0][0] - this.offsetNs : Infinity; // chip clock
      for (let i = 0; i < 10000 && clock.nanos < stopAt; i++) {
        if (core.waiting) {
          const toAlarm = clock.nanosToNextAlarm;
          const toPio = chip.nextPioNs() - clock.nanos;
          const step = Math.min(toAlarm > 0 ? toAlarm : Infinity, toPio, stopAt - clock.nanos);
          if (step === Infinity) return false; // asleep with nothing scheduled: wait for the host
          clock.tick(Math.max(step, CYCLE_NS));
        } else {
          clock.tick(core.executeInstruction() * CYCLE_NS);
        }
        chip.stepPio(clock.nanos);
        if (this.resetWhy) break;
      }
      if (this.resetWhy) this.reset();
      while (waiters.length && waiters[0][0] <= this.nowNs()) waiters.shift()[1]();
      if (this.hostQueue.length) this.feedCdc();
    }
    return true;
  }

  /**
   * Run until bench time reaches tNs (the two-chip bench's lockstep). While
   * `held` (its supply cut) the chip stands at its power-on and only the
   * bench's time moves on.
   */
  runTo(tNs) {
    const { waiters } = this;
    for (;;) {
      if (this.held) {
        if (this.resetWhy) this.reset();
        this.offsetNs = tNs - this.chip.sim.clock.nanos;
      }
      const { chip } = this;
      const { core } = chip.mcu;
      const clock = chip.sim.clock;
      const stopAt = Math.min(tNs, waiters.length ? waiters[0][0] : Infinity) - this.offsetNs; // chip clock
      while (clock.nanos < stopAt && !this.resetWhy) {
        if (core.waiting) {
          const toAlarm = clock.nanosToNextAlarm;
          const step = Math.min(toAlarm > 0 ? toAlarm : Infinity, chip.nextPioNs() - clock.nanos, stopAt - clock.nanos);
          clock.tick(Math.max(step, CYCLE_NS));
        } else {
          clock.tick(core.executeInstruction() * CYCLE_NS);
        }
        chip.stepPio(clock.nanos);
      }
      if (this.resetWhy) this.reset();
      while (waiters.length && waiters[0][0] <= this.nowNs()) waiters.shift()[1]();
      if (this.hostQueue.length) this.feedCdc();
      if (this.nowNs() >= tNs) return;
    }
  }

  start() {
    const loop = () => {
      if (this.runSlice()) setImmediate(loop);
      else setTimeout(loop, 1);
    };
    setImmediate(loop);
  }
}

/**
 * The handpiece encoder: the hand's position in counts, linear between
 * keyframes (the same integer rule as boards/shared/keyframes.py), turned
 * into quadrature levels on A/B at the emulated microsecond each count is
 * reached. A jump (`hold` elsewhere) is walked one count per microsecond so
 * the decoder never sees two pins change at once.
 */
class Encoder {
  constructor(bench, pinA, pinB) {
    this.bench = bench;
    this.pinA = pinA;
    this.pinB = pinB;
    this.kt = [0];
    this.kx = [0];
    this.applied = 0; // the count the A/B levels show
    this.generation = 0; // a newer schedule makes older pending events void
  }

  position(t) {
    const { kt, kx } = this;
    if (t <= kt[0]) return kx[0];
    for (let i = 1; i < kt.length; i++) {
      if (t <= kt[i]) {
        const [a, b, xa, xb] = [kt[i - 1], kt[i], kx[i - 1], kx[i]];
        return xa + Math.floor(((xb - xa) * (t - a)) / (b - a));
      }
    }
    return kx[kx.length - 1];
  }

  /** The first whole microsecond after t at which the position differs from position(t). */
  nextChange(t) {
    const x = this.position(t);
    const { kt } = this;
    for (let i = 1; i < kt.length; i++) {
      if (kt[i] <= t || this.kx[i] === this.kx[i - 1]) continue;
      let lo = Math.max(t, kt[i - 1]); // position(lo) may still equal x
      let hi = kt[i];
      if (this.position(hi) === x) continue;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (this.position(mid) === x) lo = mid;
        else hi = mid;
      }
      return hi;
    }
    return Infinity;
  }

  hold(x) {
    const now = this.bench.nowUs();
    this.kt = [now];
    this.kx = [x];
    this.schedule(now);
  }

  add(t, x) {
    if (t <= this.kt[this.kt.length - 1]) return 'keyframe time must increase';
    if (this.kt.length >= 1024) return 'keyframe queue full (1024)';
    this.kt.push(t);
    this.kx.push(x);
    const now = this.bench.nowUs();
    while (this.kt.length >= 2 && this.kt[1] <= now) {
      this.kt.shift();
      this.kx.shift();
    }
    this.schedule(now);
    return null;
  }

  schedule(now) {
    const gen = ++this.generation;
    const step = () => {
      if (gen !== this.generation) return;
      const t = this.bench.nowUs();
      const target = this.position(t);
      if (target !== this.applied) {
        this.applied += target > this.applied ? 1 : -1;
        const q = [0, 1, 3, 2][this.applied & 3]; // bit 0: A, bit 1: B
        this.bench.chip.setInput(this.pinA, !!(q & 1));
        this.bench.chip.setInput(this.pinB, !!(q & 2));
        this.bench.inputs.set(this.pinA, !!(q & 1));
        this.bench.inputs.set(this.pinB, !!(q & 2));
      }
      const next = target !== this.applied ? t + 1 : this.nextChange(t);
      if (next !== Infinity) this.bench.at(next * 1000, step);
    };
    step();
  }
}

/**
 * The photodiode integrator on the ADC pin (boards/rp2/board.py): it sums the
 * light of each pulse, reads pd_uj_per_lsb uJ per 12-bit ADC step (saturating
 * at 4095) and is discharged while PD_RESET is high. The rig's `pd` command
 * sets its gain, makes the next n pulses read 0, or holds stray light on it.
 */
class Photodiode {
  constructor(bench, pins) {
    this.bench = bench;
    this.pins = pins;
    this.uj = 0; // charge on the integrator
    this.gainPct = 100;
    this.drop = 0;
    this.stuck = false;
    this.resetHigh = false;
    bench.watch(pins.pd_reset, (level) => {
      this.resetHigh = level === 1;
      if (this.resetHigh) this.uj = 0;
      this.show();
    });
    bench.onChip = () => this.show(); // a fresh chip after a reset: its ADC starts at the integrator's level
  }

  /** The driver's power setpoint: the POWER_SET PWM duty times full scale. */
  powerW() {
    const gpio = this.pins.power;
    const chan = this.bench.chip.mcu.pwm.channels[(gpio >> 1) & 7];
    const cc = gpio & 1 ? chan.cc >>> 16 : chan.cc & 0xffff;
    if (!(chan.csr & 1)) return 0; // slice disabled: the RC filter settles at 0
    return Math.round((Math.min(cc, chan.top + 1) * this.pins.power_full_scale_w) / (chan.top + 1));
  }

  /** A pulse's light reaches the photodiode; returns what it sees of it (gain, dropout). */
  light(uj) {
    let seen = 0;
    if (this.drop > 0) this.drop -= 1;
    else seen = Math.floor((uj * this.gainPct) / 100);
    if (!this.resetHigh) this.uj += seen;
    this.show();
    return seen;
  }

  show() {
    const lsb = this.stuck ? 4095 : Math.min(4095, Math.floor(this.uj / this.pins.pd_uj_per_lsb));
    this.bench.chip.mcu.adc.channelValues[this.pins.pd_adc - 26] = lsb;
  }

  command(w) {
    const n = Number(w[2]);
    if (w[1] === 'gain' && Number.isInteger(n) && n >= 0) this.gainPct = n;
    else if (w[1] === 'drop' && Number.isInteger(n) && n >= 0) this.drop = n;
    else if (w[1] === 'stuck' && (w[2] === '0' || w[2] === '1')) this.stuck = w[2] === '1';
    else return '? pd wants gain PCT, drop N or stuck 0|1';
    this.show();
    return '= ok';
  }
}

/**
 * The rig channel (docs/rig.md) on emulated time, over a Unix socket the host
 * listens on. Implemented: info, now, adv, in, power, hold, kf, pos, pd,
 * stall, link, tear, and the `o` (enable, indicator), `p` (pulse: its light energy
 * and power) and `r` (watchdog, power) notifications. Other commands get
 * `? not on the emulated bench`: they reach inside the firmware (crash, soft)
 * or its files (cut, scramble), which the chip's pins and supply cannot.
 */
const RIG_INPUTS = ['key', 'door', 'estop', 'handpiece', 'temp', 'flow', 'foot'];

class RigChannel {
  constructor(bench, path, pins, countsPerMm) {
    this.bench = bench;
    this.pins = pins; // rig name -> GPIO: inputs by their docs/rig.md names, en, ind
    this.countsPerMm = countsPerMm;
    this.sock = createConnection(path);
    this.sock.on('error', (e) => die(`rig channel: ${e.message}`));
    this.sock.on('close', () => process.exit(0));
    let buf = '';
    this.sock.on('data', (data) => {
      buf += data.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.command(buf.slice(0, nl).trim());
        buf = buf.slice(nl + 1);
      }
    });
    const levels = new Map();
    for (const name of ['en', 'ind']) {
      bench.watch(pins[name], (level, tNs) => {
        if (levels.get(name) === level) return;
        levels.set(name, level);
        this.send(`o ${Math.floor(tNs / 1000)} ${name}=${level}`);
      });
    }
    // `link 0` cuts the USB link's data both ways (bytes lost, as on the simulated board).
    this.linkUp = true;
    const toHost = bench.onHostData;
    bench.onHostData = (data) => this.linkUp && toHost(data);
    const fromHost = bench.fromHost.bind(bench);
    bench.fromHost = (bytes) => this.linkUp && fromHost(bytes);
    this.encoder = new Encoder(bench, pins.enc_a, pins.enc_b);
    this.pd = new Photodiode(bench, pins);
    this.tear = false; // `tear`: the next flash erase or program is cut by a power loss
    const onChip = bench.onChip;
    bench.onChip = () => {
      onChip();
      this.hookFlash();
    };
    this.hookFlash();
    // Light leaves the laser while FIRE is high with EN high (the driver's AND
    // gate), at the power the PWM setpoint asks for; the photodiode integrates it.
    // `p` carries the energy the photodiode saw, as on the simulated board.
    let rise = null;
    bench.watch(pins.fire, (level, tNs) => {
      if (level && levels.get('en') === 1) rise = tNs;
      else if (!level && rise !== null) {
        const t = Math.floor(rise / 1000);
        const powerW = this.pd.powerW();
        const uj = Math.round((powerW * (tNs - rise)) / 1000);
        const seen = this.pd.light(uj);
        this.send(`p ${t} ${this.encoder.position(t)} ${seen} ${Math.round((tNs - rise) / 1000)} ${powerW}`);
        rise = null;
      }
    });
    bench.onReset = (why, tNs) => {
      levels.clear(); // a reset floats the outputs: the pull-downs hold them low
      for (const name of ['en', 'ind']) this.send(`o ${Math.floor(tNs / 1000)} ${name}=0`);
      this.send(`r ${Math.floor(tNs / 1000)} ${why}`);
    };
  }

  send(line) {
    this.sock.write(line + '\n');
  }

  nowUs() {
    return Math.floor(this.bench.nowNs() / 1000);
  }

  /**
   * Hang the CPU for `us` from now (a later stall replaces an earlier one, as
   * on the simulated board): the core executes nothing (no instruction, no
   * interrupt) while the clock, timers, PIO and the watchdog run on, as in a
   * hung loop. The watchdog, no longer fed, resets the chip; a reset ends the
   * hang (the fresh chip has its own core). Returns the end time in us.
   */
  stallCore(us) {
    const { bench } = this;
    const { chip } = bench;
    const { core } = chip.mcu;
    const clock = chip.sim.clock;
    this.stallEndNs = clock.nanos + us * 1000; // chip clock
    if (!Object.hasOwn(core, 'executeInstruction')) {
      core.executeInstruction = () => {
        const now = clock.nanos;
        if (now >= this.stallEndNs) {
          delete core.executeInstruction; // the prototype's again
          return core.executeInstruction();
        }
        // Idle up to the next thing that happens: an alarm (timer, watchdog), a PIO step, a rig waiter, the end.
        let stepNs = Math.min(this.stallEndNs, chip.nextPioNs()) - now;
        if (clock.nanosToNextAlarm > 0) stepNs = Math.min(stepNs, clock.nanosToNextAlarm);
        if (bench.waiters.length) stepNs = Math.min(stepNs, bench.waiters[0][0] - bench.offsetNs - now);
        return Math.max(1, Math.ceil(stepNs / CYCLE_NS)); // cycles
      };
    }
    return Math.floor((bench.offsetNs + this.stallEndNs) / 1000);
  }

  /**
   * On this chip's flash: after `tear`, the next erase or program command is
   * cut half way by a power loss (the first half of the sector erased, or of
   * the page's bytes programmed), then the chip powers up again.
   */
  hookFlash() {
    const sf = this.bench.chip.spiFlash;
    const execute = sf.execute.bind(sf);
    sf.execute = () => {
      const op = sf.cmd[0];
      const size = { 0x20: 4096, 0x52: 32768, 0xd8: 65536 }[op];
      if (!this.tear || !sf.wel || sf.cmd.length < 4 || (op !== 0x02 && !size)) return execute();
      this.tear = false;
      if (op === 0x02) {
        sf.cmd.length = 4 + Math.floor((sf.cmd.length - 4) / 2);
        execute();
      } else {
        const start = (sf.address() % sf.flash.length) & ~(size - 1);
        sf.flash.fill(0xff, start, start + size / 2);
        sf.wel = false;
        sf.cmd = [];
      }
      this.bench.requestReset('power torn-write');
    };
  }

  command(line) {
    const w = line.split(/\s+/);
    const { bench } = this;
    switch (w[0]) {
      case 'info':
        return this.send(`= clock=emulated counts_per_mm=${this.countsPerMm} t=${this.nowUs()}`);
      case 'now':
        return this.send(`= ${this.nowUs()}`);
      case 'adv': {
        const us = Number(w[1]);
        if (!Number.isInteger(us) || us <= 0) return this.send('? adv wants a positive whole number of us');
        const target = (this.nowUs() + us) * 1000;
        return bench.at(target, () => this.send(`= ${this.nowUs()}`));
      }
      case 'in': {
        const gpio = RIG_INPUTS.includes(w[1]) ? this.pins[w[1]] : undefined;
        if (gpio === undefined || !['0', '1'].includes(w[2])) return this.send(`? in wants NAME 0|1, got ${line}`);
        const level = w[2] === '1';
        bench.inputs.set(gpio, level); // held through resets, as the wiring would
        bench.chip.setInput(gpio, level);
        return this.send(`= ${this.nowUs()}`);
      }
      case 'power':
        bench.requestReset('power');
        return this.send('= ok');
      case 'hold': {
        const x = w.length > 1 ? Number(w[1]) : this.encoder.position(this.nowUs());
        if (!Number.isInteger(x)) return this.send('? hold wants a whole count');
        this.encoder.hold(x);
        return this.send(`= ${x}`);
      }
      case 'kf': {
        const [t, x] = [Number(w[1]), Number(w[2])];
        if (!Number.isInteger(t) || !Number.isInteger(x)) return this.send('? kf wants T_US COUNT');
        const err = this.encoder.add(t, x);
        return this.send(err ? `? ${err}` : `= ${this.encoder.kt.length}`);
      }
      case 'pos':
        return this.send(`= ${this.encoder.position(this.nowUs())}`);
      case 'pd':
        return this.send(this.pd.command(w));
      case 'stall': {
        const us = Number(w[1]);
        if (!Number.isInteger(us) || us <= 0) return this.send('? stall wants a positive whole number of us');
        return this.send(`= ${this.stallCore(us)}`);
      }
      case 'tear':
        this.tear = true;
        return this.send('= ok');
      case 'link':
        if (!['0', '1'].includes(w[1])) return this.send('? link wants 0|1');
        this.linkUp = w[1] === '1';
        return this.send('= ok');
      default:
        return this.send(`? not on the emulated bench: ${w[0]}`);
    }
  }
}

// ---------------------------------------------------------------------------
// The two-Pico bench: the device image and the bench rig image (boards/rig_pico)
// on two emulated RP2040s in this one process, wired pin to pin.
//
//   node emu.mjs --pair CONFIG.json
//
// CONFIG (written by host/handpiece/rp2emu.py from the two pin maps):
//   { "slice_ns": N,
//     "chips": { NAME: { "uf2": PATH, "cdc": SOCKET, "inputs": { GPIO: 0|1 } }, ... },
//     "wires": [ [FROM, GPIO, TO, GPIO], ... ],        an output drives an input
//     "supply": [FROM, GPIO, TO],                      high = TO powered
//     "laser": { "chip": NAME, ...rig channel pins } } the driver and photodiode on NAME
// Each chip's USB CDC is carried, raw, over a connection to its Unix socket.
//
// Both chips run on one emulated timeline in slices of slice_ns: each slice
// the first chip runs to the slice's end, then the second. A level the
// second chip drives reaches the first up to one slice late (the first has
// already run past it); a level the first drives reaches the second at its
// exact instant (scheduled on the second's timeline). So `chips` lists the
// device first: its outputs (FIRE, EN) reach the rig exactly, and the rig's
// outputs (encoder, interlocks) reach the device within one slice.
// ---------------------------------------------------------------------------

const PAIR_REPORT_WALL_MS = 10000;

/** The laser driver stand-in: light while FIRE and EN are high, into the photodiode model. */
function laserModel(bench, pins) {
  const pd = new Photodiode(bench, pins);
  let en = 0;
  let rise = null;
  bench.watch(pins.en, (level) => {
    en = level;
  });
  bench.watch(pins.fire, (level, tNs) => {
    if (level && en === 1) rise = tNs;
    else if (!level && rise !== null) {
      pd.light(Math.round((pd.powerW() * (tNs - rise)) / 1000));
      rise = null;
    }
  });
  return pd;
}

class PairBench {
  constructor(config) {
    this.sliceNs = config.slice_ns;
    if (!Number.isInteger(this.sliceNs) || this.sliceNs < 1000) throw new Error('slice_ns must be a whole number >= 1000');
    this.names = Object.keys(config.chips);
    this.benches = {};
    for (const name of this.names) {
      const c = config.chips[name];
      const inputs = new Map(Object.entries(c.inputs ?? {}).map(([g, v]) => [Number(g), !!v]));
      const bench = new Bench(readFileSync(c.uf2), inputs, []);
      bench.held = false;
      const sock = createConnection(c.cdc);
      sock.on('error', (e) => die(`${name} cdc: ${e.message}`));
      sock.on('close', () => process.exit(0));
      sock.on('data', (chunk) => bench.fromHost(chunk));
      bench.onHostData = (data) => sock.write(data);
      this.benches[name] = bench;
    }
    const driven = new Map(); // chip name -> wires it drives: [gpio, target bench, target gpio]
    for (const [from, gpio, to, input] of config.wires) {
      if (!this.benches[from] || !this.benches[to]) throw new Error(`wire ${from}:${gpio} -> ${to}:${input}: no such chip`);
      const target = this.benches[to];
      const late = this.names.indexOf(to) < this.names.indexOf(from); // the target has run ahead
      target.inputs.set(input, false); // an undriven line reads low (pull-downs)
      target.chip.setInput(input, false);
      const apply = (level) => {
        target.inputs.set(input, !!level);
        target.chip.setInput(input, !!level);
      };
      this.benches[from].watch(gpio, (level, tNs) => (late ? apply(level) : target.at(tNs, () => apply(level))));
      if (!driven.has(from)) driven.set(from, []);
      driven.get(from).push(apply);
    }
    // A reset floats the chip's outputs: what they drive falls to its pull-down.
    for (const [from, applies] of driven) this.benches[from].onReset = () => applies.forEach((apply) => apply(0));
    if (config.supply) {
      const [from, gpio, to] = config.supply;
      const dut = this.benches[to];
      dut.held = true; // no supply until the relay closes
      this.benches[from].watch(gpio, (level) => {
        if (level === 0 && !dut.held) {
          dut.held = true;
          dut.requestReset('power');
        } else if (level === 1) dut.held = false;
      });
    }
    if (config.laser) laserModel(this.benches[config.laser.chip], config.laser);
    this.tNs = 0;
  }

  /** Run slices for SLICE_WALL_MS of wall time, then let the event loop do I/O. */
  start() {
    const wall0 = performance.now();
    let report = wall0 + PAIR_REPORT_WALL_MS;
    const loop = () => {
      const wallEnd = performance.now() + SLICE_WALL_MS;
      if (wallEnd > report) {
        report += PAIR_REPORT_WALL_MS; // the slowdown, for the README's numbers
        log(`pair t_ms=${Math.round(this.tNs / 1e6)} wall_ms=${Math.round(performance.now() - wall0)}`);
      }
      while (performance.now() < wallEnd) {
        this.tNs += this.sliceNs;
        for (const name of this.names) this.benches[name].runTo(this.tNs);
      }
      setImmediate(loop);
    };
    setImmediate(loop);
  }
}

function mainPair(argv) {
  if (argv.length !== 1) die('usage: node emu.mjs --pair CONFIG.json');
  let pair;
  try {
    pair = new PairBench(JSON.parse(readFileSync(argv[0], 'utf8')));
  } catch (e) {
    die(`--pair ${argv[0]}: ${e.message}`);
  }
  log(`started a pair: ${pair.names.join(', ')}, slice ${pair.sliceNs} ns`);
  pair.start();
}

function main(argv) {
  const usage =
    'usage: node emu.mjs IMAGE.uf2 [--in GPIO=0|1 ...] [--trace GPIO ...] [--rig SOCKET --rig-pins JSON [--counts-per-mm N] [--measure]]';
  const inputs = new Map();
  const traced = [];
  const rig = { path: null, pins: null, countsPerMm: 20, measure: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--trace') {
      const gpio = /^\d+$/.test(argv[++i] ?? '') ? Number(argv[i]) : -1;
      if (gpio < 0 || gpio > 29) die(`--trace wants a GPIO 0..29, got ${argv[i]}; ${usage}`);
      traced.push(gpio);
      continue;
    }
    if (argv[i] === '--rig') {
      rig.path = argv[++i];
      continue;
    }
    if (argv[i] === '--rig-pins') {
      try {
        rig.pins = JSON.parse(argv[++i]);
      } catch (e) {
        die(`--rig-pins wants a JSON object of name: GPIO: ${e.message}`);
      }
      continue;
    }
    if (argv[i] === '--measure') {
      rig.measure = true;
      continue;
    }
    if (argv[i] === '--counts-per-mm') {
      rig.countsPerMm = Number(argv[++i]);
      continue;
    }
    if (argv[i] !== '--in') {
      rest.push(argv[i]);
      continue;
    }
    const m = /^(\d+)=([01])$/.exec(argv[++i] ?? '');
    if (!m || Number(m[1]) > 29) die(`--in wants GPIO=0|1 with GPIO 0..29, got ${argv[i]}; ${usage}`);
    inputs.set(Number(m[1]), m[2] === '1');
  }
  if (rest.length !== 1) die(usage);
  argv = rest;
  let bytes;
  try {
    bytes = readFileSync(argv[0]);
  } catch (e) {
    die(`cannot read ${argv[0]}: ${e.message}`);
  }
  let bench;
  try {
    bench = new Bench(bytes, inputs, traced);
  } catch (e) {
    die(`${argv[0]}: ${e.message}`);
  }
  if (rig.path) {
    for (const name of ['en', 'ind', 'fire', 'enc_a', 'enc_b', 'pd_reset', 'pd_adc', 'power', 'pd_uj_per_lsb', 'power_full_scale_w']) {
      if (rig.pins?.[name] === undefined) die(`--rig-pins lacks ${name}; ${usage}`);
    }
    const channel = new RigChannel(bench, rig.path, rig.pins, rig.countsPerMm);
    if (rig.measure) installMeasure(bench, channel, rig.pins);
  } else if (rig.measure) {
    die(`--measure needs --rig; ${usage}`);
  }
  process.stdin.on('data', (chunk) => bench.fromHost(chunk));
  process.stdin.on('end', () => process.exit(0));
  log(`started ${argv[0]} (${bytes.length} bytes)`);
  bench.start();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--pair') mainPair(process.argv.slice(3));
  else main(process.argv.slice(2));
}
