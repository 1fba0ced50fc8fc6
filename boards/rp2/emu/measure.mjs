// Measurement stamps for `make bench` (emu.mjs --measure): instants on the
// emulated clock, in nanoseconds, sent on the rig channel as `m ...` lines,
// and a heap census read from the chip's RAM the way a debugger would (SWD),
// so the flashed image needs no diagnostic code of its own.
//
//   m in NAME LEVEL T_NS   the rig's `in` drove an input (before its `= T` reply)
//   m rx HEX T_NS          a real-time byte ('!' or '?') entered the CDC's FIFO
//   m low GPIO T_NS        the core wrote LASER_EN low (SIO GPIO_OUT_CLR), even
//                          when it already was: the trip IRQ's write is seen in
//                          any state, not only while emitting
//   m en LEVEL T_NS        LASER_EN's level changed
//   m fire LEVEL T_NS      LASER_FIRE's level changed (the PIO pulse)
//   m wdt USED T_NS        the core wrote the watchdog's LOAD register (a feed:
//                          the control loop feeds once per iteration); USED: the
//                          heap bytes allocated then, garbage included (it falls
//                          after a collection)
//   m flash OP T_NS        the flash took an erase (20, 52, d8) or a program (02)
//
// `heap` (a rig command) replies `= pool=B used=B live=B`: the MicroPython
// GC pool's size, the bytes its allocation table marks in use now (garbage
// included), and the bytes a collection would keep. `live` marks from more
// roots than the GC's own (heapCensus) and follows only block-aligned pointers
// to a block's head, as MicroPython's collector does: an upper bound of what
// gc.mem_alloc() reads after gc.collect().

const RAM_BASE = 0x20000000;
const BYTES_PER_BLOCK = 16; // MicroPython's GC block: 4 words on a 32-bit port
const SIO_GPIO_OUT_CLR = 0x18;
const WATCHDOG_LOAD = 0x04;
const STAMPED_BYTES = new Set([0x21, 0x3f]); // '!' and '?', the real-time bytes
const AT_FREE = 0;
const AT_HEAD = 1;
const AT_TAIL = 2;
const AT_MARK = 3; // a head the collector has marked (a census during a collection)

/**
 * The GC's heap area in RAM: MicroPython keeps, one after another, the
 * allocation table's start and length, the finaliser table's start (right
 * just after the allocation table) and the pool's start and end; the pool holds
 * 4 blocks per table byte and ends the heap. Found by that signature.
 */
function findHeap(ram) {
  const view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const end = RAM_BASE + ram.length;
  const inRam = (a) => a >= RAM_BASE && a < end;
  for (let off = 0; off + 20 <= ram.length; off += 4) {
    const atb = view.getUint32(off, true);
    const atbLen = view.getUint32(off + 4, true);
    const ftb = view.getUint32(off + 8, true);
    const pool = view.getUint32(off + 12, true);
    const poolEnd = view.getUint32(off + 16, true);
    // the finaliser table starts right after the allocation table (v1.28: one byte after)
    if (!inRam(atb) || atbLen === 0 || ftb < atb + atbLen || ftb > atb + atbLen + 4) continue;
    if (!inRam(pool) || poolEnd > end) continue;
    if (pool < ftb || poolEnd - pool !== atbLen * 4 * BYTES_PER_BLOCK) continue;
    return { area: off, atb: atb - RAM_BASE, blocks: atbLen * 4, pool: pool - RAM_BASE, poolEnd: poolEnd - RAM_BASE };
  }
  return null;
}

/**
 * Census of the heap in a chip's SRAM (`ram`), the core's registers and stack
 * pointer: null when no heap is found. The roots are what MicroPython's
 * collector scans, widened to what a debugger can know without the image's
 * symbols: the registers, the stack from the stack pointer up, and all RAM
 * below the heap (data and bss, where the interpreter's root pointers live).
 */
export function heapCensus(ram, registers, sp) {
  const h = findHeap(ram);
  if (!h) return null;
  const view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const kind = (b) => (ram[h.atb + (b >> 2)] >> ((b & 3) * 2)) & 3;
  let used = 0;
  for (let b = 0; b < h.blocks; b++) if (kind(b) !== AT_FREE) used += 1;
  const marked = new Uint8Array(h.blocks);
  const stack = [];
  const consider = (word) => {
    const a = word - RAM_BASE;
    if (a < h.pool || a >= h.poolEnd || (a - h.pool) % BYTES_PER_BLOCK) return;
    const b = (a - h.pool) / BYTES_PER_BLOCK;
    const k = kind(b);
    if ((k === AT_HEAD || k === AT_MARK) && !marked[b]) {
      marked[b] = 1;
      stack.push(b);
    }
  };
  for (const r of registers) consider(r);
  for (let off = 0; off + 4 <= h.atb; off += 4) {
    if (off < h.area || off >= h.area + 20) consider(view.getUint32(off, true)); // the area's own pool pointer is no root
  }
  const spOff = sp - RAM_BASE;
  if (spOff < h.poolEnd || spOff > ram.length) return null; // the stack lives above the heap
  for (let off = spOff & ~3; off + 4 <= ram.length; off += 4) consider(view.getUint32(off, true));
  let live = 0;
  while (stack.length) {
    let b = stack.pop();
    do {
      live += 1;
      const base = h.pool + b * BYTES_PER_BLOCK;
      for (let w = 0; w < BYTES_PER_BLOCK; w += 4) consider(view.getUint32(base + w, true));
      b += 1;
    } while (b < h.blocks && kind(b) === AT_TAIL);
  }
  const bytes = (n) => n * BYTES_PER_BLOCK;
  return { pool: bytes(h.blocks), used: bytes(used), live: bytes(live) };
}

/** Bytes the allocation table marks in use (garbage included), or -1 before the heap exists. */
function usedBytes(ram, h) {
  let used = 0;
  for (let i = 0; i < h.blocks / 4; i++) {
    const byte = ram[h.atb + i];
    for (let k = 0; k < 8; k += 2) if ((byte >> k) & 3) used += 1;
  }
  return used * BYTES_PER_BLOCK;
}

/** Install the stamps and the `heap` command on a bench and its rig channel. */
export function installMeasure(bench, rig, pins) {
  const send = (text) => rig.send(`m ${text}`);
  const hookChip = (chip) => {
    const { cdc, watchdog } = chip;
    const sendByte = cdc.sendSerialByte.bind(cdc);
    cdc.sendSerialByte = (b) => {
      if (STAMPED_BYTES.has(b)) send(`rx ${b.toString(16)} ${bench.nowNs()}`);
      sendByte(b);
    };
    const wdtWrite = watchdog.writeUint32.bind(watchdog);
    let heap = null; // found at the first feed: the firmware runs by then
    watchdog.writeUint32 = (offset, value) => {
      if (offset === WATCHDOG_LOAD) {
        heap = heap || findHeap(chip.mcu.sram);
        send(`wdt ${heap ? usedBytes(chip.mcu.sram, heap) : -1} ${bench.nowNs()}`);
      }
      wdtWrite(offset, value);
    };
    const flash = chip.spiFlash;
    const execute = flash.execute.bind(flash);
    flash.execute = () => {
      const op = flash.cmd[0];
      if (flash.wel && [0x02, 0x20, 0x52, 0xd8].includes(op)) send(`flash ${op.toString(16).padStart(2, '0')} ${bench.nowNs()}`);
      execute();
    };
    const { sio } = chip.mcu;
    const sioWrite = sio.writeUint32.bind(sio);
    const enMask = 1 << pins.en;
    sio.writeUint32 = (offset, value) => {
      if (offset === SIO_GPIO_OUT_CLR && value & enMask) send(`low ${pins.en} ${bench.nowNs()}`);
      sioWrite(offset, value);
    };
  };
  hookChip(bench.chip);
  const reset = bench.reset.bind(bench);
  bench.reset = () => {
    reset();
    hookChip(bench.chip);
  };
  for (const name of ['en', 'fire']) {
    let last = 0; // both start low (pulled down)
    bench.watch(pins[name], (level, tNs) => {
      if (level !== last) send(`${name} ${level} ${Math.round(tNs)}`);
      last = level;
    });
  }
  const command = rig.command.bind(rig);
  rig.command = (line) => {
    const w = line.split(/\s+/);
    if (w[0] === 'in') send(`in ${w[1]} ${w[2]} ${bench.nowNs()}`);
    if (w[0] !== 'heap') return command(line);
    const { sram, core } = bench.chip.mcu;
    const c = heapCensus(sram, core.registers.subarray(0, 15), core.SP);
    return rig.send(c ? `= pool=${c.pool} used=${c.used} live=${c.live}` : '? no MicroPython heap found in RAM');
  };
}
