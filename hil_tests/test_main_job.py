"""The main job end to end on the simulated board: the 1,250 J reference
session, its record and its report (SR-6)."""
import json
import re

import pytest

from handpiece import cli
from handpiece.program import load
from handpiece.report import summarize
from handpiece.session import SessionRunner

REFERENCE = "programs/knee-oa-reference.toml"


@pytest.mark.safety("SR-6")
@pytest.mark.needs_light_meter
def test_reference_session_delivers_1250_j_to_the_last_whole_pulse(hil, tmp_path):
    device, rig = hil
    program = load(REFERENCE)
    SessionRunner(device, rig, program, tmp_path, seed=3, out=open("/dev/null", "w")).run()
    # what the rig saw leave the laser
    total_uj = sum(p.width_us * p.power_w for p in rig.pulses)
    assert len(rig.pulses) == 1388 + 8 * 86 + 1388
    assert total_uj == 1_247_040_000  # 3,464 x 0.36 J: one more pulse in any phase would pass its target
    assert total_uj <= 1_250_000_000
    s = summarize(tmp_path / "session.jsonl")
    assert s.session_mj == 1_247_040 and not s.faults
    assert [s.phases[i].pulses for i in range(3)] == [1388, 688, 1388]


def test_run_command_writes_record_summary_and_png(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli.main(["run", REFERENCE, "--out", str(runs), "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "1247.04" in printed and "faults: none" in printed
    out = (runs / "latest").resolve()
    assert out.parent == runs and (runs / "latest").is_symlink()
    lines = (out / "session.jsonl").read_text().splitlines()
    objs = [json.loads(line) for line in lines]
    assert {"event", "status", "reply", "note"} <= {o["kind"] for o in objs}
    assert objs[0]["kind"] == "header" and objs[0]["firmware"] and objs[0]["board"] == "unix"
    assert objs[0]["options"]["seed"] == 5 and objs[0]["program_file"] == "knee-oa-reference.toml"
    assert objs[-1]["kind"] == "end" and objs[-1]["how"] == "done"
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.txt").read_text()
    assert re.search(r"^total +1250.00 +1247.04 +1247.04 +3464$", summary, re.M)
    for f in ("session.jsonl", "summary.txt", "report.png"):
        assert str(out / f) in printed


def test_a_silent_device_ends_the_session_and_is_left_in_standby(hil, tmp_path, monkeypatch):
    """Run as for a real board (no rig): on the simulated board the clock
    then stands still, so no status line comes; the runner gives up after
    SILENT_S with a clear error and leaves the device in STANDBY."""
    from handpiece import session

    monkeypatch.setattr(session, "SILENT_S", 0.3)
    device, _ = hil
    runner = SessionRunner(device, None, load(REFERENCE), tmp_path, out=open("/dev/null", "w"))
    with pytest.raises(session.SessionError, match="went silent"):
        runner.run()
    assert device.query_status()["state"] == "STANDBY"
    last = json.loads((tmp_path / "session.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "end" and last["how"] == "device lost" and "went silent" in last["detail"]
