"""Where each run's files go: a folder of its own under `runs/`, never reused.

    runs/2026-11-29T091203Z-3fa9c2/   session.jsonl, summary.txt, report.png
    runs/latest -> 2026-11-29T091203Z-3fa9c2

A record is a medical record, so a new run never writes into an old run's
folder. `latest` is a relative symlink, swapped atomically; where the file
system has no symlinks it is a one-line text file naming the folder, which
`resolve_record` follows as well.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

RECORD = "session.jsonl"
SUMMARY = "summary.txt"
PNG = "report.png"
LATEST = "latest"


class RunDirError(ValueError):
    pass


def new_run_dir(parent: str | Path, now: float | None = None) -> Path:
    """Create a fresh run folder under `parent` and check it can be written,
    before anything is sent to a device."""
    root = Path(parent)
    if root.exists() and not root.is_dir():
        raise RunDirError(f"--out {root} is a file, not a folder")
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime(now))
    try:
        root.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            run = root / f"{stamp}-{secrets.token_hex(3)}"
            try:
                run.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise RunDirError(f"--out {root}: no free run folder name")
        probe = run / RECORD
        probe.touch()
    except PermissionError as e:
        raise RunDirError(f"--out {root}: not writable ({e.strerror})") from e
    except OSError as e:
        raise RunDirError(f"--out {root}: cannot create a run folder there ({e.strerror})") from e
    return run


def point_latest(run: Path) -> str:
    """Make `<parent>/latest` name `run`; return a note for the operator if
    something had to be moved aside, else ''."""
    root = run.parent
    latest = root / LATEST
    note = ""
    tmp = root / f".{LATEST}-{secrets.token_hex(3)}"
    try:
        if latest.is_dir() and not latest.is_symlink():
            # a folder from the old layout holds a record: keep it under its own name
            stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime(latest.stat().st_mtime))
            kept = root / f"{stamp}-earlier"
            latest.rename(kept)
            note = f"{latest} was a run folder from an earlier version: kept as {kept}"
        try:
            os.symlink(run.name, tmp, target_is_directory=True)
        except OSError:  # no symlinks here (some mounted file systems): a text file instead
            tmp.write_text(run.name + "\n")
        os.replace(tmp, latest)
    except OSError as e:  # the run goes on: its folder is what counts, `latest` is a convenience
        return f"{latest} not updated ({e.strerror}): this run is {run}"
    return note


def resolve_record(path: str | Path) -> Path:
    """A record path from what the operator typed: the record itself, a run
    folder, or `runs/latest` in either of its forms."""
    p = Path(path)
    if p.is_dir():
        return p / RECORD
    if p.name == LATEST and p.is_file() and p.stat().st_size < 200:
        try:
            name = p.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return p
        if name and "/" not in name and (p.parent / name).is_dir():
            return p.parent / name / RECORD
    return p
