"""Treatment records: a folder per run, header and closing lines, honest
summaries of runs that ended early, records cut by a crash."""
import json
import os
import re

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


def _scan_and_points_record(path):
    """Scan pulses every 3.6 mm over 0..200 mm with no pulse from 100 to 150
    mm, and a trigger point at 50 mm on top of the scan: a hotspot."""
    head = _header(settings={"counts_per_mm": "20"})
    head["phases"][0]["energy_j"] = "16"  # 0.8 J/cm over the 20 cm scanned
    lines = [{"kind": "header", **head}]
    for i, pulses in enumerate((1388, 688, 1388)):
        lines.append({"kind": "reply", "phase": str(i), "pulses": str(pulses), "pulse_uj": "360000",
                      "period_us": "34286", "text": "..."})
    t = 0
    for k in range(56):
        x_mm = k * 3.6
        if 100 < x_mm < 150:
            continue
        t += 40
        lines.append({"kind": "status", "t": str(t), "state": "EMITTING", "ph": "0", "pulses": str(k),
                      "e_mj": str(k * 360), "under_mm": "0", "v_mm_s": "190" if k == 20 else "100"})
        lines.append({"kind": "event", "t_ms": t, "name": "pulse", "ph": "0", "pos": str(round(x_mm * 20)),
                      "uj": "352000"})
    for k in range(40):
        t += 100
        lines.append({"kind": "status", "t": str(t), "state": "EMITTING", "ph": "1", "pulses": str(k),
                      "e_mj": "0", "under_mm": "0", "v_mm_s": "0"})
        lines.append({"kind": "event", "t_ms": t, "name": "pulse", "ph": "1", "pos": "1000", "uj": "361000"})
    lines.append({"kind": "end", "how": "interrupted", "utc": "2026-11-29T09:00:00Z"})
    path.write_text("".join(json.dumps(o) + "\n" for o in lines))


def test_report_png_shows_dose_limits_and_marks_with_legends_beside_the_data(tmp_path):
    rec = tmp_path / RECORD
    _scan_and_points_record(rec)
    s = summarize(rec)
    from handpiece.report import figure

    fig = figure(s)
    fig.canvas.draw()
    head, dose, speed, energy, rate = fig.axes
    header_text = " ".join(t.get_text() for t in head.texts)
    for want in ("Treatment record: INTERRUPTED, NOT COMPLETE", "knee OA reference", "firmware 0.1.0 on unix",
                 "of 766.00 J target", "faults"):
        assert want in header_text
    assert dose.get_ylabel() == "J/cm" and "position" in dose.get_xlabel()

    def legend(ax):
        return [t.get_text() for t in ax.get_legend().get_texts()]

    dose_legend = " | ".join(legend(dose))
    for want in ("phase 1 fast scan", "phase 2 trigger points", "phase 1 target", "dwell limit 15 J/cm per 10 s",
                 "hotspot (phases overlap)", "under-dosed (< 80 % of target)", "most in any 10 s"):
        assert want in dose_legend
    targets = [float(x) for x in re.findall(r"phase \d target ([\d.]+) J/cm", dose_legend)]
    assert targets and max(targets) < dose.get_ylim()[1] and 15 < dose.get_ylim()[1]  # every line on the plot
    assert "phase 1 band 70-130 mm/s" in legend(speed) and "out of band while emitting" in legend(speed)
    assert "nominal +-20 %" in legend(energy)
    assert "the phase's rate limit" in legend(rate) and "device maximum 40 Hz" in legend(rate)
    # the hotspot marks sit over the trigger point's centimetre (5 cm), under-dosing under 10..14 cm
    hot = [ln for ln in dose.lines if ln.get_label() == "hotspot (phases overlap)"][0]
    assert list(hot.get_xdata()) == [5.5]
    under = [ln for ln in dose.lines if ln.get_color() == "#c00000" and ln.get_linewidth() == 5]
    assert sorted({int(min(ln.get_xdata())) for ln in under}) == [10, 11, 12, 13, 14]
    for ax in (dose, speed, energy, rate):  # every legend outside its plot: it hides no data
        box = ax.get_legend().get_window_extent()
        assert box.x0 >= ax.get_window_extent().x1
        assert box.x1 <= fig.bbox.x1  # and on the page
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_program_file_that_is_not_utf8_is_one_line(tmp_path, capsys, monkeypatch):
    p = tmp_path / "latin1.toml"
    p.write_bytes(b"[program]\nname = 'genou \xe9'\n")
    monkeypatch.setattr(cli, "make_target", lambda *a: _NeverOpened())
    for cmd in ("check", "run"):
        assert cli.main([cmd, str(p), "--out", str(tmp_path / "runs")] if cmd == "run" else [cmd, str(p)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("not UTF-8 text: byte 0xE9 at offset 24 (line 2)") and "\n" not in err
    assert not (tmp_path / "runs").exists()  # nothing written for a program that cannot run
