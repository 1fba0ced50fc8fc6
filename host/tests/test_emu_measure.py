"""The emulator's heap census (boards/rp2/emu/measure.mjs) on a RAM image laid
out as MicroPython's GC lays out its heap: the allocation table, the
finaliser table one byte after it, and the pool of 16-byte blocks."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEASURE = ROOT / "boards" / "rp2" / "emu" / "measure.mjs"

# RAM offsets: the area's five words, the allocation table, the pool, a root in bss
SCRIPT = """
import { heapCensus } from %(measure)s;
const RAM = 0x20000000, ram = new Uint8Array(264 * 1024), v = new DataView(ram.buffer);
const atb = 0x1000, pool = 0x2000, blocks = 256;
[RAM + atb, blocks / 4, RAM + atb + blocks / 4 + 1, RAM + pool, RAM + pool + blocks * 16]
  .forEach((w, i) => v.setUint32(0x100 + 4 * i, w, true));
const kinds = %(kinds)s;  // block -> 1 head, 2 tail
for (const [b, k] of Object.entries(kinds)) ram[atb + (b >> 2)] |= k << ((b & 3) * 2);
const at = (b) => RAM + pool + 16 * b;
for (const [off, b] of %(words)s) v.setUint32(off, at(b) + %(skew)d, true);
const regs = new Uint32Array(15); regs[0] = %(reg)d >= 0 ? at(%(reg)d) : 0;
console.log(JSON.stringify(heapCensus(ram, regs, RAM + 0x41000)));
"""


def census(kinds, words, reg=-1, skew=0):
    """words: (RAM offset, block) puts a pointer to that block's start (+skew) at that offset;
    reg: a block register r0 points to (-1: none)."""
    node = shutil.which("node")
    if not node:
        pytest.fail("no `node` on PATH: the emulated rp2 needs Node.js 18 or newer")
    src = SCRIPT % {"measure": json.dumps(MEASURE.as_uri()), "kinds": json.dumps(kinds),
                    "words": json.dumps(words), "skew": skew, "reg": reg}
    out = subprocess.run([node, "--input-type=module", "-e", src], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


POOL = 0x2000


def test_live_follows_pointers_from_bss_registers_and_the_stack_through_whole_objects():
    # A: blocks 0-1 (its second block points to B); B: block 4; C: block 8, referenced by nothing;
    # D: block 10, from a register; E: block 12, from the stack above the stack pointer
    kinds = {0: 1, 1: 2, 4: 1, 8: 1, 10: 1, 12: 1, 13: 2, 14: 2}
    words = [(0x200, 0), (POOL + 16 + 8, 4), (0x41010, 12)]
    got = census(kinds, words, reg=10)
    assert got == {"pool": 256 * 16, "used": 8 * 16, "live": (2 + 1 + 1 + 3) * 16}


def test_only_block_aligned_pointers_to_a_head_keep_an_object():
    kinds = {0: 1, 1: 2, 4: 1}
    inner = census(kinds, [(0x200, 1)])  # points at A's tail block
    skewed = census(kinds, [(0x200, 4)], skew=4)  # 4 bytes into B
    below_sp = census(kinds, [(0x40ff0, 4)])  # a stale word under the stack pointer
    assert inner["live"] == skewed["live"] == below_sp["live"] == 0
    assert inner["used"] == 3 * 16
