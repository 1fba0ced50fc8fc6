"""Host side of the handpiece controller: serial client, targets, rig, CLI."""

__version__ = "0.1.0"
PROTO_VERSION = 1
