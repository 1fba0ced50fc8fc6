"""The session store in the STM32F405's 4 KB backup SRAM (RM0090 5.1.2).

Why not /flash: closing a file there erases a 16 or 64 KB flash sector with
the CPU stalled for hundreds of ms (F405 datasheet: 64 KB sector erase up to
1.1 s), far beyond any watchdog that still guards a stalled loop, and the
PC may have /flash mounted as a drive meanwhile. The backup SRAM needs no
erase: a write is 32 word stores (microseconds), so the 200 ms watchdog stays.

Keeping it: the SRAM is in the backup domain. It keeps its content through
resets and, with the backup regulator on (PWR_CSR.BRE, set here), on the
VBAT pin while the supply is off: **a battery (or supercap) on VBAT is
required** for the store to survive power loss (SR-14; docs/boards.md). Lost
content reads as garbage, which both slots' CRCs reject: the core faults
F_STORE at boot and asks for NEWSESSION; it never silently starts counting
from zero. A write torn by a reset leaves one slot half-written: the
two-slot session store keeps the other.

Access (RM0090 5.1.2, 6.3.10, 6.3.13, 5.4.1-2): PWR clock on (RCC_APB1ENR
PWREN), backup-domain writes allowed (PWR_CR DBP), the SRAM's clock on
(RCC_AHB1ENR BKPSRAMEN), the backup regulator on (PWR_CSR BRE) and ready
(BRR). The slots are the first 2 x hal.STORE_BLOCK bytes, word by word
through machine.mem32 (values and addresses above 2**30 are big ints: fine
here, this never runs in an interrupt).
"""
import machine
import struct
from micropython import const

import hal

BKPSRAM = const(0x4002_4000)  # 4 KB, RM0090 table 1
_RCC_AHB1ENR = const(0x4002_3830)
_RCC_APB1ENR = const(0x4002_3840)
_PWR_CR = const(0x4000_7000)
PWR_CSR = const(0x4000_7004)
BKPSRAMEN = const(1 << 18)
PWREN = const(1 << 28)
DBP = const(1 << 8)
BRE = const(1 << 9)
BRR = const(1 << 3)
_BRR_POLLS = const(10_000)  # the regulator is ready within a few us

_mem32 = machine.mem32


class BackupStore:
    def __init__(self):
        _mem32[_RCC_APB1ENR] |= PWREN
        _mem32[_PWR_CR] |= DBP
        _mem32[_RCC_AHB1ENR] |= BKPSRAMEN
        _mem32[PWR_CSR] |= BRE
        for _ in range(_BRR_POLLS):
            if _mem32[PWR_CSR] & BRR:
                break
        else:
            raise RuntimeError("backup regulator not ready: the store would not survive power loss")
        self._buf = bytearray(hal.STORE_BLOCK)

    def read(self, slot):
        base = BKPSRAM + slot * hal.STORE_BLOCK
        buf = bytearray(hal.STORE_BLOCK)
        for i in range(0, hal.STORE_BLOCK, 4):
            struct.pack_into("<I", buf, i, _mem32[base + i])
        return bytes(buf)

    def write(self, slot, data):
        if len(data) > hal.STORE_BLOCK:
            raise ValueError("store block > %d bytes" % hal.STORE_BLOCK)
        buf = self._buf
        buf[:] = b"\xff" * hal.STORE_BLOCK
        buf[: len(data)] = data
        base = BKPSRAM + slot * hal.STORE_BLOCK
        for i in range(0, hal.STORE_BLOCK, 4):
            _mem32[base + i] = struct.unpack_from("<I", buf, i)[0]
