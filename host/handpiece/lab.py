"""A bench taken from a labgrid place (`pytest --lg-env bench.yaml`).

labgrid-exporter on the bench's host exports the device's serial port and the
rig's as NetworkSerialPort resources named `dut` and `rig` (ser2net in
RFC 2217 mode); a place groups them and is acquired with labgrid-client;
labgrid's pytest plugin reads the environment file that names the place.
This module turns that target into the same SerialTarget `--target
serial:... --rig serial:...` would give. labgrid is optional: only this
module imports it (`make lab-setup`, docs/labgrid.md).
"""
from __future__ import annotations

from .targets import SerialTarget, TargetError

TARGET = "main"  # the target in the environment file
DUT, RIG = "dut", "rig"  # the resource names in the exporter's configuration


def port_url(port) -> str:
    """pyserial's URL for a NetworkSerialPort. ser2net answers no modem-line
    settings for a port without them (USB CDC, a pty): ign_set_control."""
    if port.protocol == "rfc2217":
        return f"rfc2217://{port.host}:{port.port}?ign_set_control"
    if port.protocol == "raw":
        return f"socket://{port.host}:{port.port}"
    raise TargetError(f"serial port {port.name} on {port.host}: protocol {port.protocol!r} is neither rfc2217 nor raw")


def labgrid_target(env) -> SerialTarget:
    """The device (and the bench rig, if the place has one) of the
    environment's target `main`."""
    from labgrid.exceptions import NoResourceFoundError
    from labgrid.resource import NetworkSerialPort

    target = env.get_target(TARGET)
    if target is None:
        raise TargetError(f"the labgrid environment {env.config_file} has no target {TARGET!r}")
    try:
        dut = target.get_resource(NetworkSerialPort, name=DUT)
    except NoResourceFoundError as e:
        raise TargetError(f"the labgrid target {TARGET!r} has no serial port named {DUT!r} "
                          f"(is the place acquired?): {e}") from e
    try:
        rig = target.get_resource(NetworkSerialPort, name=RIG)
    except NoResourceFoundError:
        rig = None  # a bench without the rig: tests that need one skip
    return SerialTarget(port_url(dut), dut.speed, rig=f"serial:{port_url(rig)}@{rig.speed}" if rig else None)
