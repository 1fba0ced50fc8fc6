"""`handpiece`: the command-line tool.

  handpiece [--target unix|serial:PORT] run PROGRAM [--out DIR]   the main job, into DIR/<time>-<id>/
  handpiece [--target ...] monitor [--seconds N]   handshake and show the status stream
  handpiece [--target ...] check PROGRAM           validate a program against the device's limits
  handpiece [--target ...] reset                   clear a fault once its cause is gone
  handpiece report RECORD [--png FILE]             summary (and PNG) from a record (or run folder)
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

from .device import DeviceError, ProtocolError
from .escape import shown
from .program import ProgramError, device_limits, load, rate_notes, validate
from .report import RecordError, plot, summarize
from .rig import RigError
from .runs import LATEST, PNG, RECORD, SUMMARY, RunDirError, new_run_dir, point_latest, resolve_record
from .screen import Screen
from .session import Record, SessionError, SessionRunner, ended_how, run_header
from .targets import TargetError, make_target
from .transport import TransportError


def _target(args):
    return make_target(args.target, args.micropython)


def cmd_run(args) -> int:
    """Exit 0 for a completed session, 1 for one that ended early (refused,
    a fault, a lost device), 130 for Ctrl-C; the record, summary and PNG are
    written in every case, in a run folder of their own."""
    program = load(args.program)
    target = _target(args)
    run_dir = new_run_dir(args.out)  # checked before the firmware starts
    options = {"out": args.out, "seed": args.seed, "no_png": args.no_png, "target": args.target}
    record = Record(run_dir / RECORD, run_header(program, args.target, options))
    moved = point_latest(run_dir)
    if moved:
        print(f"handpiece: {moved}", file=sys.stderr)
    screen = Screen(program, sys.stdout)
    t0 = time.monotonic()
    exc: BaseException | None = None
    try:
        try:
            device, rig = target.open()
            SessionRunner(device, rig, program, run_dir, seed=args.seed, record=record, screen=screen).run()
        finally:
            target.close()
    except (KeyboardInterrupt, SessionError, ProgramError, DeviceError, ProtocolError, RigError,
            TargetError, TransportError) as e:
        exc = e
    finally:
        if record.ended is None:  # the device never got as far as the runner
            how, detail = ended_how(exc, None)
            record.close(how, **detail)
    wall_s = time.monotonic() - t0
    summary = summarize(run_dir / RECORD)
    text = summary.text()
    files = [run_dir / RECORD, run_dir / SUMMARY]
    (run_dir / SUMMARY).write_text(text + "\n", encoding="utf-8")
    if not args.no_png:
        try:
            files.append(plot(summary, run_dir / PNG))
        except OSError as e:  # the record and summary are what matter: say so and go on
            print(f"handpiece: report.png not written ({e.strerror or e})", file=sys.stderr)
    print()
    print(text)
    print(f"wall time {wall_s:.1f} s")
    print("files written:")
    for f in files:
        print(f"  {f}")
    print(f"  {Path(args.out) / LATEST} -> {run_dir.name}")
    if isinstance(exc, KeyboardInterrupt):
        print("handpiece: interrupted: emission stopped, the record closed", file=sys.stderr)
        return 130
    if record.ended and record.ended["how"] != "done":
        detail = record.ended.get("detail", "")
        print(f"handpiece: the run ended early: {record.ended['how']}" + (f": {shown(detail)}" if detail else ""),
              file=sys.stderr)
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
        limits = device_limits(device)
        validate(program, limits)
    finally:
        target.close()
    for i, ph in enumerate(program.phases):
        name = "" if ph.name == f"phase {i + 1}" else f" ({shown(ph.name)})"
        print(textwrap.fill(f"phase {i + 1}{name}: {ph.mode}, {ph.pulses} pulses x {ph.pulse_j} J = "
                            f"{ph.delivered_j} J (target {ph['energy_j']} J)", 80, subsequent_indent="  "))
    notes = rate_notes(program, limits)
    for note in notes:
        print(textwrap.fill(f"note: {shown(note)}", 80, subsequent_indent="  "))
    print(textwrap.fill(f"ok: {program.delivered_j} J of {program.energy_j} J in whole pulses, within the "
                        "device's limits" + (f"; see the {len(notes)} note(s)" if notes else ""), 80,
                        subsequent_indent="  "))
    return 0


def cmd_reset(args) -> int:
    """After a fault: RESET, once its cause is gone (the device says what is
    still in the way)."""
    target = _target(args)
    try:
        device, _ = target.open()
        device.hello()
        st = device.query_status()
        if st.get("state") != "FAULT":
            print(f"the device is in {shown(st.get('state'))}, not FAULT: nothing to reset")
            return 0
        device.request("RESET")
        print(f"fault F{int(st.get('fault', 0)):02d} cleared: the device is in {shown(device.state())}; "
              "lift the footswitch before the next run")
    finally:
        target.close()
    return 0


def cmd_newsession(args) -> int:
    """NEWSESSION: the operator ends the session in the device (open or
    completed), so the next run begins a new one, the same program included."""
    target = _target(args)
    try:
        device, _ = target.open()
        device.hello()
        device.request("NEWSESSION")
        print("session closed: the next run begins a new session")
    finally:
        target.close()
    return 0


def check_png(png: str) -> Path:
    """--png: a .png file in a folder that exists; checked before any work."""
    p = Path(png)
    if p.is_dir():
        raise RecordError(f"--png {shown(png)} is a folder: give a file name ending in .png")
    if p.suffix.lower() != ".png":
        raise RecordError(f"--png {shown(png)}: the report is a PNG image: give a file name ending in .png")
    if not p.resolve().parent.is_dir():
        raise RecordError(f"--png {shown(png)}: no such folder {shown(p.parent)}")
    return p


def cmd_report(args) -> int:
    png = check_png(args.png) if args.png else None
    s = summarize(resolve_record(args.record))
    print(s.text())
    if png:
        try:
            print(f"report: {plot(s, png)}")
        except OSError as e:
            raise RecordError(f"--png {shown(args.png)}: cannot write it ({e.strerror or e})") from e
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="handpiece", description="HILT handpiece controller: host tool")
    ap.add_argument("--target", default="unix", help="unix (simulated board, default) or serial:/dev/ttyACM0")
    ap.add_argument("--micropython", default=None, help="micropython binary for the unix target")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a treatment program (the main job)")
    r.add_argument("program")
    r.add_argument("--out", default="runs", help="where run folders go: OUT/<time>-<id>/, OUT/latest (default runs)")
    r.add_argument("--seed", type=int, default=1, help="the simulated operator's random seed")
    r.add_argument("--no-png", action="store_true")
    r.set_defaults(fn=cmd_run)
    m = sub.add_parser("monitor", help="handshake and show the status stream")
    m.add_argument("--seconds", type=float, default=3.0)
    m.set_defaults(fn=cmd_monitor)
    c = sub.add_parser("check", help="validate a program against the device's hard limits")
    c.add_argument("program")
    c.set_defaults(fn=cmd_check)
    z = sub.add_parser("reset", help="clear a fault once its cause is gone")
    z.set_defaults(fn=cmd_reset)
    n = sub.add_parser("newsession", help="end the device's session (the next run begins a new one)")
    n.set_defaults(fn=cmd_newsession)
    p = sub.add_parser("report", help="summarize a session record")
    p.add_argument("record", help="a session.jsonl, a run folder, or runs/latest")
    p.add_argument("--png", default=None)
    p.set_defaults(fn=cmd_report)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ProgramError, RecordError, RunDirError, TargetError, TransportError, SessionError) as e:
        print(f"\nhandpiece: {shown(e)}", file=sys.stderr)
        return 2
    except (DeviceError, ProtocolError, RigError) as e:
        print(f"\nhandpiece: device: {shown(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nhandpiece: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
