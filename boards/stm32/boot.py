"""Runs before main.py on every boot: USB as a serial port only (VCP).

The pyboard's factory mode is VCP+MSC, which lets the PC mount /flash as a
drive while the board itself writes it: both sides cache the FAT, and the
filesystem is corrupted. VCP only keeps /flash the board's alone (the
session store is not on /flash anyway: backupstore.py). To copy files, use
mpremote over the VCP, or the pyboard's safe mode, which skips boot.py.
"""
import pyb

pyb.usb_mode("VCP")
