"""`handpiece`: the command-line tool.

  handpiece [--target unix|serial:PORT] run PROGRAM [--out DIR]   the main job
  handpiece [--target ...] monitor [--seconds N]   handshake and show the status stream
  handpiece [--target ...] check PROGRAM           validate a program against the device's limits
  handpiece report RECORD [--png FILE]             summary (and PNG) from a session record
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .device import DeviceError, ProtocolError
from .program import ProgramError, device_limits, load, validate
from .report import RecordError, plot, summarize
from .rig import RigError
from .session import SessionError, SessionRunner
from .targets import TargetError, make_target
from .transport import TransportError


def _target(args):
    return make_target(args.target, args.micropython)


def cmd_run(args) -> int:
    """Exit 0 for a completed session, 1 if it ended early (a fault, a lost
    device); the record, summary and PNG are written either way."""
    program = load(args.program)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise RecordError(f"--out {out_dir} is a file, not a folder")
    target = _target(args)
    t0 = time.monotonic()
    ended_early = None
    try:
        device, rig = target.open()
        SessionRunner(device, rig, program, out_dir, seed=args.seed).run()
    except SessionError as e:
        ended_early = e
    finally:
        target.close()
    wall_s = time.monotonic() - t0
    summary = summarize(out_dir / "session.jsonl")
    text = summary.text()
    (out_dir / "summary.txt").write_text(text + "\n")
    print(text)
    print(f"wall time {wall_s:.1f} s")
    print(f"record:  {out_dir / 'session.jsonl'}")
    if not args.no_png:
        print(f"report:  {plot(summary, out_dir / 'report.png')}")
    if ended_early:
        print(f"handpiece: the session ended early: {ended_early}", file=sys.stderr)
        return 1
    return 0


def cmd_monitor(args) -> int:
    target = _target(args)
    try:
        device, rig = target.open()
        info = device.hello()
        print(f"connected: board {info['board']}, firmware {info['fw']}, protocol {info['proto']}")
        print("limits: " + device.request("LIMITS").text)
        device.listen(lambda ln: print(ln.raw) if ln.kind in ("st", "ev") else None)
        device.request("SET status_ms=500")
        if rig is not None and rig.virtual:
            for _ in range(int(args.seconds * 2)):
                rig.advance(500)
                device.sync()
                time.sleep(0.5)  # a watchable pace for a person
        else:
            time.sleep(args.seconds)
        device.request("SET status_ms=0")
    finally:
        target.close()
    return 0


def cmd_check(args) -> int:
    program = load(args.program)
    target = _target(args)
    try:
        device, _ = target.open()
        device.hello()
        validate(program, device_limits(device))
    finally:
        target.close()
    for i, ph in enumerate(program.phases):
        name = "" if ph.name == f"phase {i + 1}" else f" ({ph.name})"
        print(f"phase {i + 1}{name}: {ph.mode}, {ph.pulses} pulses x {ph.pulse_j} J = {ph.delivered_j} J "
              f"(target {ph['energy_j']} J)")
    print(f"ok: {program.delivered_j} J of {program.energy_j} J in whole pulses, within the device's limits")
    return 0


def cmd_report(args) -> int:
    s = summarize(args.record)
    print(s.text())
    if args.png:
        if not Path(args.png).resolve().parent.is_dir():
            raise RecordError(f"--png {args.png}: no such folder")
        print(f"report: {plot(s, args.png)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="handpiece", description="HILT handpiece controller: host tool")
    ap.add_argument("--target", default="unix", help="unix (simulated board, default) or serial:/dev/ttyACM0")
    ap.add_argument("--micropython", default=None, help="micropython binary for the unix target")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a treatment program (the main job)")
    r.add_argument("program")
    r.add_argument("--out", default="runs/latest", help="folder for the record, summary and PNG")
    r.add_argument("--seed", type=int, default=1, help="the simulated operator's random seed")
    r.add_argument("--no-png", action="store_true")
    r.set_defaults(fn=cmd_run)
    m = sub.add_parser("monitor", help="handshake and show the status stream")
    m.add_argument("--seconds", type=float, default=3.0)
    m.set_defaults(fn=cmd_monitor)
    c = sub.add_parser("check", help="validate a program against the device's hard limits")
    c.add_argument("program")
    c.set_defaults(fn=cmd_check)
    p = sub.add_parser("report", help="summarize a session record")
    p.add_argument("record")
    p.add_argument("--png", default=None)
    p.set_defaults(fn=cmd_report)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ProgramError, RecordError, TargetError, TransportError, SessionError) as e:
        print(f"\nhandpiece: {e}", file=sys.stderr)
        return 2
    except (DeviceError, ProtocolError, RigError) as e:
        print(f"\nhandpiece: device: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nhandpiece: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
