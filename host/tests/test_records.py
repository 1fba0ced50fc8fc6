"""Treatment records: a folder per run, header and closing lines, honest
summaries of runs that ended early, records cut by a crash."""
import json
import os

import pytest

from handpiece import cli
from handpiece.escape import shown
from handpiece.frames import Line
from handpiece.program import load
from handpiece.report import RecordError, plot, summarize
from handpiece.runs import RECORD, new_run_dir, point_latest, resolve_record
from handpiece.session import Record, run_header

REFERENCE = "programs/knee-oa-reference.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_run_gets_its_own_folder_and_latest_names_the_newest(tmp_path):
    runs = tmp_path / "runs"
    first = new_run_dir(runs, now=0)
    (first / RECORD).write_text("first treatment\n")
    point_latest(first)
    second = new_run_dir(runs, now=0)  # the same second: still a folder of its own
    point_latest(second)
    assert first != second and first.parent == second.parent == runs
    assert first.name.startswith("1970-01-01T000000Z-")
    assert (first / RECORD).read_text() == "first treatment\n"
    assert os.readlink(runs / "latest") == second.name
    assert resolve_record(runs / "latest") == runs / "latest" / RECORD


def test_latest_falls_back_to_a_text_file_without_symlinks(tmp_path, monkeypatch):
    run = new_run_dir(tmp_path)

    def no_symlinks(*a, **k):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    point_latest(run)
    assert (tmp_path / "latest").read_text() == run.name + "\n"
    assert resolve_record(tmp_path / "latest") == run / RECORD


def test_an_old_latest_folder_is_kept_not_overwritten(tmp_path):
    old = tmp_path / "latest"
    old.mkdir()
    (old / RECORD).write_text("an earlier treatment\n")
    run = new_run_dir(tmp_path)
    note = point_latest(run)
    kept = [p for p in tmp_path.iterdir() if p.name.endswith("-earlier")]
    assert len(kept) == 1 and (kept[0] / RECORD).read_text() == "an earlier treatment\n"
    assert "kept as" in note and os.readlink(tmp_path / "latest") == run.name


class _NeverOpened:
    opened = False

    def open(self):
        _NeverOpened.opened = True
        raise AssertionError("the firmware was started")

    def close(self):
        pass


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_unwritable_out_is_one_line_before_the_firmware_starts(tmp_path, monkeypatch, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "runs"
    monkeypatch.setattr(cli, "make_target", lambda *a: _NeverOpened())
    assert cli.main(["run", REFERENCE, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"handpiece: --out {out}") and "\n" not in err
    assert not _NeverOpened.opened


def _header(**over):
    prog = load(REFERENCE)
    h = run_header(prog, "unix", {"seed": 1})
    h.update(firmware="0.1.0", board="unix", limits={"rate_hz_max": 40, "avg_power_mw_max": 10500,
                                                      "dwell_mj_per_cm_max": 15000, "dwell_window_ms": 10000})
    h.update(over)
    return h


def test_record_header_comes_first_and_closing_line_last(tmp_path):
    rec = Record(tmp_path / RECORD, {"program": "p"})
    rec.line(Line("ev", t_ms=5, name="boot", text="fw=0.1.0", fields={"fw": "0.1.0"}))  # before HELLO
    rec.header(firmware="0.1.0")
    rec.note(event="program")
    rec.close("fault", code="F06", detail="F06 photodiode")
    rec.line(Line("ev", t_ms=9, name="late"))  # after the end: not part of the run
    objs = [json.loads(line) for line in (tmp_path / RECORD).read_text().splitlines()]
    assert [o["kind"] for o in objs] == ["header", "event", "note", "end"]
    assert objs[0]["firmware"] == "0.1.0" and objs[0]["program"] == "p"
    assert objs[-1]["how"] == "fault" and objs[-1]["code"] == "F06"


def test_header_carries_time_program_hash_and_options():
    h = run_header(load(REFERENCE), "serial:/dev/ttyACM0", {"seed": 3})
    assert h["utc"].endswith("Z") and h["local"][-6] in "+-"
    assert h["program_file"] == "knee-oa-reference.toml" and len(h["program_sha256"]) == 64
    assert h["host"].startswith("handpiece ") and h["options"] == {"seed": 3}
    assert h["target"] == "serial:/dev/ttyACM0" and [p["energy_j"] for p in h["phases"]] == ["500", "250", "500"]


def _interrupted_record(path, end=None):
    """Phase 1 part way (pulse reports lost on the way), stopped by Ctrl-C."""
    lines = [{"kind": "header", **_header()}]
    for i, pulses in enumerate((1388, 688, 1388)):
        lines.append({"kind": "reply", "phase": str(i), "pulses": str(pulses), "pulse_uj": "360000",
                      "period_us": "34286", "text": "..."})
    for k in range(10):
        lines.append({"kind": "event", "t_ms": 100 + k * 35, "name": "pulse", "ph": "0", "pos": str(k * 72),
                      "uj": "360000"})
    lines.append({"kind": "event", "t_ms": 500, "name": "pulse-lost", "n": "30"})
    lines.append({"kind": "status", "t": "600", "state": "PAUSED", "ph": "0", "pulses": "40", "e_mj": "14400",
                  "under_mm": "2.500", "v_mm_s": "0", "open": "-", "foot": "0", "fault": "0", "new": "x"})
    lines.append(end or {"kind": "end", "how": "interrupted", "utc": "2026-11-29T09:00:00Z"})
    path.write_text("".join(json.dumps(o) + "\n" for o in lines))


def test_interrupted_run_is_summarized_from_the_devices_last_status(tmp_path):
    rec = tmp_path / RECORD
    _interrupted_record(rec)
    s = summarize(rec)
    text = s.text()
    assert "ended: interrupted" in text
    # the device's own count (40 pulses), not the 10 reports that made it into the record
    assert s.phases[0].delivered_mj == 14400 and s.phases[0].under_mm == 2.5
    assert [s.phases[i].target_mj for i in range(3)] == [500000, 250000, 500000]
    assert "phase 1: the run was interrupted at 14.40 of 499.68 J: 485.28 J not delivered" in text
    assert "2 trigger points" in text and "3 slow scan" in text  # phases not reached are listed
    assert max(len(line) for line in text.splitlines()) <= 80
    assert plot(s, tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC


def test_faulted_and_lost_runs_say_so(tmp_path):
    rec = tmp_path / RECORD
    _interrupted_record(rec, {"kind": "end", "how": "fault", "code": "F06", "detail": "F06 photodiode: 150%"})
    s = summarize(rec)
    assert s.ended == "fault F06" and "a fault stopped the run at 14.40" in s.text()
    _interrupted_record(rec, {"kind": "end", "how": "device lost", "detail": "the device went silent"})
    text = summarize(rec).text()
    assert "ended: device lost" in text and "the device went silent" in text


def test_a_record_cut_mid_line_is_read_to_its_last_whole_line(tmp_path, capsys):
    rec = tmp_path / RECORD
    _interrupted_record(rec)
    whole = rec.read_bytes()
    last_line_start = whole.rstrip(b"\n").rfind(b"\n") + 1
    rec.write_bytes(whole[: last_line_start + 12])  # a crash while the closing line was written
    s = summarize(rec)
    assert s.end is None and "line 17 is cut off after 12 bytes" in s.cut
    assert cli.main(["report", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "record cut: line 17 is cut off" in out and "no closing line" in out


def test_a_record_with_bytes_that_are_not_utf8_is_one_line_naming_where(tmp_path, capsys):
    rec = tmp_path / RECORD
    _interrupted_record(rec)
    data = bytearray(rec.read_bytes())
    at = data.index(b'"pulse-lost"') + 3
    data[at] = 0xFF
    rec.write_bytes(bytes(data))
    with pytest.raises(RecordError, match=f"byte 0xFF at offset {at} is not UTF-8"):
        summarize(rec)
    assert cli.main(["report", str(rec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"byte 0xFF at offset {at}" in err


@pytest.mark.parametrize("png,message", [
    ("report.jpg", "give a file name ending in .png"),
    ("no/such/folder/r.png", "no such folder"),
    ("folder.png", "is a folder"),
])
def test_report_png_bad_path_is_one_line(tmp_path, capsys, monkeypatch, png, message):
    rec = tmp_path / RECORD
    _interrupted_record(rec)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.png").mkdir()
    assert cli.main(["report", str(rec), "--png", png]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_report_takes_a_run_folder_or_latest(tmp_path, capsys):
    run = new_run_dir(tmp_path)
    _interrupted_record(run / RECORD)
    point_latest(run)
    assert cli.main(["report", str(tmp_path / "latest")]) == 0
    assert "ended: interrupted" in capsys.readouterr().out


def test_control_characters_from_a_record_are_escaped_on_screen(tmp_path):
    rec = tmp_path / RECORD
    _interrupted_record(rec)
    lines = rec.read_text().splitlines()
    head = json.loads(lines[0])
    head["program"] = "knee \u202eleft"
    head["phases"][0]["name"] = "scan\x1b[2J"
    rec.write_text("\n".join([json.dumps(head)] + lines[1:]) + "\n")
    text = summarize(rec).text()
    assert "\u202e" not in text and "\x1b" not in text
    assert "knee \\u202eleft" in text and "scan\\u001b[2J" in text
    assert shown("plain") == "plain"
