"""Firmware and protocol versions, reported in the boot event and the handshake."""
from micropython import const

FW_VERSION = "0.1.0"
PROTO_VERSION = const(1)
