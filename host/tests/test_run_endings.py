"""`handpiece run` on the simulated board when the run does not finish:
Ctrl-C and a fault still leave a closed record, a summary from the device's
last status and a PNG, each saying how the run ended."""
import json

from handpiece import cli, session
from handpiece.runs import PNG, RECORD, SUMMARY

REFERENCE = "programs/knee-oa-reference.toml"


def _run(tmp_path, monkeypatch, break_in):
    """Run the reference program; `break_in(runner)` is called where the
    trigger-point phase would start."""
    def points(self, i, ph):
        break_in(self)

    monkeypatch.setattr(session.SessionRunner, "_points", points)
    rc = cli.main(["run", REFERENCE, "--out", str(tmp_path / "runs")])
    run = (tmp_path / "runs" / "latest").resolve()
    objs = [json.loads(line) for line in (run / RECORD).read_text().splitlines()]
    return rc, run, objs


def test_ctrl_c_still_writes_a_closed_record_summary_and_png(tmp_path, monkeypatch, capsys):
    def ctrl_c(runner):
        raise KeyboardInterrupt

    rc, run, objs = _run(tmp_path, monkeypatch, ctrl_c)
    assert rc == 130
    assert objs[0]["kind"] == "header" and objs[-1] == {**objs[-1], "kind": "end", "how": "interrupted"}
    summary = (run / SUMMARY).read_text()
    assert "ended: interrupted" in summary
    assert "1 fast scan" in summary and "2 trigger points" in summary and "3 slow scan" in summary
    assert "phase 2: the run was interrupted at 0.00 of 247.68 J: 247.68 J not delivered" in summary
    assert "phase 3: the run was interrupted at 0.00 of 499.68 J" in summary
    assert (run / PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "interrupted" in capsys.readouterr().err


def test_a_fault_ends_the_run_with_its_code_in_record_summary_and_png(tmp_path, monkeypatch, capsys):
    def drifting_sensor(runner):
        runner.rig.photodiode(gain_pct=150)  # measured energy 50 % high: F06
        session.SessionRunner._scan(runner, 1, runner.program.phases[0])

    rc, run, objs = _run(tmp_path, monkeypatch, drifting_sensor)
    assert rc == 1
    end = objs[-1]
    assert end["kind"] == "end" and end["how"] == "fault" and end["code"] == "F06"
    summary = (run / SUMMARY).read_text()
    assert "ended: fault F06" in summary and "faults: F06" in summary
    assert "a fault stopped the run at" in summary
    assert (run / PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    err = capsys.readouterr().err
    assert "ended early: fault" in err


def test_a_refused_run_gets_its_own_record_and_leaves_the_last_one_alone(tmp_path, capsys):
    """Over the device's session cap: refused before any emission, twice;
    neither run writes over the other's record."""
    over = tmp_path / "over.toml"
    over.write_text(open(REFERENCE).read().replace("energy_j = 500", "energy_j = 700"))
    runs = tmp_path / "runs"
    folders = []
    for _ in range(2):
        assert cli.main(["run", str(over), "--out", str(runs), "--no-png"]) == 1
        folders.append((runs / "latest").resolve())
    assert folders[0] != folders[1] and all(f.parent == runs for f in folders)
    for f in folders:
        objs = [json.loads(line) for line in (f / RECORD).read_text().splitlines()]
        assert objs[0]["kind"] == "header" and objs[0]["firmware"]
        assert objs[-1]["how"] == "refused" and "above the limit 1500" in objs[-1]["detail"]
        assert "ended: refused" in (f / SUMMARY).read_text()
    assert "ended early: refused" in capsys.readouterr().err


def test_check_says_when_the_rate_will_be_clamped_and_what_it_costs(tmp_path, capsys):
    prog = tmp_path / "fast-points.toml"
    prog.write_text('[[phase]]\nname = "tp"\nmode = "point"\nwidth_us = 150\npower_w = 3000\nrate_hz = 40\n'
                    'points = 8\ntol_mm = 0.5\nenergy_j = 200\n')
    assert cli.main(["check", str(prog)]) == 0
    out = capsys.readouterr().out
    assert ("note: phase 1 (tp): rate 40 Hz x 0.45 J = 18 W is over the average power limit 10.5 W: the device "
            "will slow it to 23.3 Hz; 440 pulses take 19 s instead of 11 s (+8 s)") in " ".join(out.split())
    assert "see the 1 note(s)" in " ".join(out.split()) and max(len(line) for line in out.splitlines()) <= 80


class _Opened:
    """A target already open (and faulted) for the command under test."""

    def __init__(self, target):
        self.target = target

    def open(self):
        return self.target.device, self.target.rig

    def close(self):
        pass


def test_reset_clears_a_fault_once_its_cause_is_gone(monkeypatch, capsys):
    from handpiece.strategy import Station
    from handpiece.targets import UnixPortTarget

    target = UnixPortTarget()
    try:
        device, rig = target.open()
        Station(device, rig).ready()
        rig.open("door")
        rig.advance(50)
        device.sync()
        assert device.state() == "FAULT"
        monkeypatch.setattr(cli, "make_target", lambda *a: _Opened(target))
        assert cli.main(["reset"]) == 2  # the door is still open: one line naming it
        assert "E12" in capsys.readouterr().err
        rig.close("door")
        rig.advance(50)
        assert cli.main(["reset"]) == 0
        assert "fault F02 cleared: the device is in STANDBY" in capsys.readouterr().out
        assert cli.main(["reset"]) == 0
        assert "nothing to reset" in capsys.readouterr().out
    finally:
        target.close()
