// Emulated RP2040 bench: boots a UF2 in rp2040js and carries its USB CDC on
// this process's stdin/stdout (raw bytes). Diagnostics go to stderr as lines
// starting with "emu:". The host side (host/handpiece/rp2emu.py) puts a pty
// in front of the pipes so the host opens the device like /dev/ttyACM0.
//
//   node emu.mjs IMAGE.uf2 [--in GPIO=0|1 ...]
//
// --in sets the level the carrier board holds a GPIO input at from power-on
// (rp2040js does not model pull resistors or open inputs; they read low).
//
// Differences from the stock rp2040js Simulator, each needed by the firmware:
// - PIO state machines run in lockstep with the emulated system clock (clock
//   divider and delay cycles honoured); stock rp2040js runs them in bursts
//   unrelated to emulated time.
// - A watchdog timeout or trigger resets the chip: flash, the watchdog's
//   scratch registers and its reset reason survive, RAM and peripherals do not.
// - Host bytes wait in a queue and enter the CDC's 512-byte FIFO only while it
//   has room: rp2040js drops bytes pushed into a full FIFO.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Simulator, USBCDC, ConsoleLogger, LogLevel } from 'rp2040js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FLASH_BASE = 0x10000000;
const CYCLE_NS = 8; // rp2040js runs the core at 125 MHz
const CDC_FIFO_BYTES = 512;
const WATCHDOG_BASE_HI = 0x40058; // rp2040js keys peripherals by address >>> 12
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

/** One power-on of the chip: a fresh rp2040js instance over the kept flash. */
class Chip {
  constructor(bench, bootrom, flash, watchdog, inputs) {
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
    this.watchdog.onWatchdogTrigger = () => bench.requestReset('watchdog');
    for (const pio of mcu.pio) {
      pio.run = () => {}; // stepped from Bench.run in lockstep instead
      for (const sm of pio.machines) sm.nextNs = 0;
    }
    this.cdc = new USBCDC(mcu.usbCtrl);
    this.cdc.onSerialData = (data) => bench.toHost(data);
    this.cdc.onDeviceConnected = () => log(`usb connected t_us=${Math.round(bench.nowNs() / 1000)}`);
    for (const [gpio, level] of inputs) mcu.gpio[gpio].setInputValue(level);
    mcu.core.PC = FLASH_BASE; // as the boot ROM would after its flash checks
  }

  /** Run the enabled PIO state machines up to the core's time nowNs. */
  stepPio(nowNs) {
    for (const pio of this.mcu.pio) {
      if (pio.stopped) continue;
      for (const sm of pio.machines) {
        if (!sm.enabled) {
          sm.nextNs = nowNs;
          continue;
        }
        const div = (sm.clockDivInt || 65536) + sm.clockDivFrac / 256;
        while (sm.nextNs <= nowNs) {
          const before = sm.cycles;
          sm.step();
          sm.nextNs += Math.max(1, sm.cycles - before) * div * CYCLE_NS;
          pio.checkChangedPins();
        }
      }
    }
  }

  /** Nanoseconds (chip clock) of the next PIO step, or Infinity when no PIO runs. */
  nextPioNs() {
    let next = Infinity;
    for (const pio of this.mcu.pio) {
      if (pio.stopped) continue;
      for (const sm of pio.machines) if (sm.enabled && sm.nextNs < next) next = sm.nextNs;
    }
    return next;
  }
}

export class Bench {
  constructor(uf2Bytes, inputs = new Map()) {
    this.inputs = inputs; // GPIO -> level the board holds it at
    this.bootrom = loadBootrom();
    const flash = new Uint8Array(16 * 1024 * 1024).fill(0xff);
    loadUF2(uf2Bytes, flash);
    this.offsetNs = 0; // emulated time before the current chip's power-on
    this.hostQueue = [];
    this.resetWhy = null;
    this.chip = new Chip(this, this.bootrom, flash, null, this.inputs);
    this.onHostData = (data) => process.stdout.write(data);
  }

  nowNs() {
    return this.offsetNs + this.chip.sim.clock.nanos;
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

  /** Reset the chip: flash and watchdog scratch/reason kept, RAM and peripherals fresh. */
  reset() {
    const old = this.chip.mcu;
    const watchdog = { scratch: this.chip.watchdog.scratchData.slice(), reason: this.chip.watchdog.reason };
    this.offsetNs = this.nowNs();
    log(`reset ${this.resetWhy} t_us=${Math.round(this.offsetNs / 1000)}`);
    this.resetWhy = null;
    this.chip = new Chip(this, this.bootrom, old.flash, watchdog, this.inputs);
  }

  /** Run the emulation for up to SLICE_WALL_MS of wall time; false when the chip sleeps with nothing scheduled. */
  runSlice() {
    const wallEnd = performance.now() + SLICE_WALL_MS;
    while (performance.now() < wallEnd) {
      const { chip } = this;
      const { core } = chip.mcu;
      const clock = chip.sim.clock;
      for (let i = 0; i < 10000; i++) {
        if (core.waiting) {
          const toAlarm = clock.nanosToNextAlarm;
          const toPio = chip.nextPioNs() - clock.nanos;
          let step = Math.min(toAlarm > 0 ? toAlarm : Infinity, toPio);
          if (step === Infinity) return false; // asleep with nothing scheduled: wait for the host
          clock.tick(Math.max(step, CYCLE_NS));
        } else {
          clock.tick(core.executeInstruction() * CYCLE_NS);
        }
        chip.stepPio(clock.nanos);
        if (this.resetWhy) break;
      }
      if (this.resetWhy) this.reset();
      if (this.hostQueue.length) this.feedCdc();
    }
    return true;
  }

  start() {
    const loop = () => {
      if (this.runSlice()) setImmediate(loop);
      else setTimeout(loop, 1);
    };
    setImmediate(loop);
  }
}

function main(argv) {
  const usage = 'usage: node emu.mjs IMAGE.uf2 [--in GPIO=0|1 ...]';
  const inputs = new Map();
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
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
    bench = new Bench(bytes, inputs);
  } catch (e) {
    die(`${argv[0]}: ${e.message}`);
  }
  process.stdin.on('data', (chunk) => bench.fromHost(chunk));
  process.stdin.on('end', () => process.exit(0));
  log(`started ${argv[0]} (${bytes.length} bytes)`);
  bench.start();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
