"""Targets and the CLI: finding micropython, missing ports, clean exits."""
import os
import signal
import subprocess
import sys
import time

import pytest

from handpiece import cli
from handpiece.targets import ENV_MICROPYTHON, TargetError, find_micropython, make_target, micropython_argv


def test_micropython_from_the_environment_wins(tmp_path, monkeypatch):
    fake = tmp_path / "micropython"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(ENV_MICROPYTHON, str(fake))
    assert find_micropython() == str(fake)
    assert find_micropython(str(fake)) == str(fake)


def test_a_missing_micropython_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_MICROPYTHON, str(tmp_path / "nope"))
    with pytest.raises(TargetError, match="does not exist"):
        find_micropython()


def test_unknown_target_spec():
    with pytest.raises(TargetError, match="unknown target"):
        make_target("usb")
    with pytest.raises(TargetError, match="needs a port"):
        make_target("serial:")


def test_missing_serial_port_is_a_clear_cli_error(capsys):
    assert cli.main(["--target", "serial:/dev/ttyNOPE0", "monitor"]) == 2
    assert "serial port /dev/ttyNOPE0 does not exist" in capsys.readouterr().err


def test_bad_program_file_is_a_clear_cli_error(tmp_path, capsys):
    p = tmp_path / "p.toml"
    p.write_text("[[phase]]\nmode='scan'\n")
    assert cli.main(["check", str(p)]) == 2
    assert "phase 1: missing width_us" in capsys.readouterr().err


def test_report_of_a_wrong_file(tmp_path, capsys):
    p = tmp_path / "r.jsonl"
    p.write_text("not json\n")
    assert cli.main(["report", str(p)]) == 2
    assert "not a session record line" in capsys.readouterr().err


def test_serial_transport_uses_pyserial_with_the_port_name(mocker):
    """The serial target opens the port exactly as given (mocked: no board here)."""
    opened = mocker.patch("handpiece.transport.serial.Serial")
    mocker.patch("handpiece.targets.os.path.exists", return_value=True)
    mocker.patch("handpiece.targets.to_standby")  # nothing answers on the mocked port
    opened.return_value.read.return_value = b""
    opened.return_value.in_waiting = 0
    target = make_target("serial:/dev/ttyACM7@230400")
    device, rig = target.open()
    assert rig is None
    opened.assert_called_once_with("/dev/ttyACM7", baudrate=230400, timeout=0.05, exclusive=True)
    target.close()


def firmware_pids() -> list[int]:
    """Processes running the simulated board's main.py, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"boards/unix/main.py" in f.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_test_run_leaves_no_micropython_behind(tmp_path, sig):
    """Interrupt (Ctrl-C) or kill a test run mid-test: every firmware process
    it started is gone, whether or not pytest got to clean up."""
    test = tmp_path / "test_long.py"
    test.write_text(
        "import time\n"
        "def test_hangs(station, rig):\n"
        "    station.standby()\n"
        "    print('STARTED', flush=True)\n"
        "    time.sleep(60)\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def as_at_a_terminal():
        # Ctrl-C reaches a run started at a terminal; a run started in the
        # background (a CI job under `cmd &`) inherits SIGINT ignored.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", str(test)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
                            preexec_fn=as_at_a_terminal)
    for line in proc.stdout:
        if "STARTED" in line:
            break
    children = [p for p in firmware_pids() if _parent_chain_has(p, proc.pid)]
    assert children, "the test did not start a firmware process"
    proc.send_signal(sig)
    proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in children):
        time.sleep(0.05)
    assert not [p for p in children if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def _parent_chain_has(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().split(")")[-1].split()[1])
        except OSError:
            return False
    return False


def test_a_target_that_cannot_work_stops_the_run_at_once(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(device):\n    pass\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--target",
                        "serial:/dev/ttyNOPE9", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert "serial port /dev/ttyNOPE9 does not exist" in r.stdout + r.stderr


def test_the_pip_micropython_starts_without_the_site_setup():
    """The venv's `micropython` is a console script: it is started as its
    extension module under `python -S`, and still runs MicroPython."""
    binary = find_micropython()
    argv = micropython_argv(binary)
    assert argv[:3] == [sys.executable, "-S", "-c"]
    r = subprocess.run(argv + ["-c", "import sys; print(sys.implementation.name, 6 * 7)"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == "micropython 42\n", r.stdout + r.stderr


def test_another_micropython_binary_is_started_as_it_is(tmp_path):
    fake = tmp_path / "micropython"
    fake.write_text("#!/bin/sh\necho native\n")
    fake.chmod(0o755)
    assert micropython_argv(str(fake)) == [str(fake)]


def test_rp2_emu_target_specs(tmp_path):
    from handpiece.targets import Rp2EmuTarget

    assert isinstance(make_target("rp2-emu"), Rp2EmuTarget)
    assert make_target("rp2-emu:" + str(tmp_path / "x.uf2")).uf2 == tmp_path / "x.uf2"
    with pytest.raises(TargetError, match="rp2-emu"):
        make_target("rp2emu")


def test_a_missing_rp2_image_stops_the_run_at_once(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(device):\n    pass\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--target",
                        "rp2-emu:" + str(tmp_path / "nope.uf2"), str(tmp_path)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 2
    assert "no UF2 image at " in r.stdout + r.stderr


def test_the_firmware_runs_compiled_to_mpy_as_the_boards_load_it(tmp_path):
    """The bench's heap figure comes from this tree: .mpy files only, no source."""
    from handpiece.targets import UnixPortTarget, compiled_tree

    tree = compiled_tree(tmp_path / "tree")
    assert not list((tree / "firmware").glob("*.py")) and (tree / "firmware" / "controller.mpy").exists()
    with UnixPortTarget(tree=tree) as (device, rig):
        assert device.hello()["fw"]
        assert "reset=power" in device.events_named("boot")[0].raw


def test_the_test_target_runs_the_sources_as_they_are_now_compiled_to_mpy(tmp_path, monkeypatch):
    """The plugin's Unix target runs .mpy compiled from the tree, kept under a
    hash of the sources: an edited (or mutated) source is compiled again and
    runs, never an earlier compiled tree."""
    import re
    import shutil

    from handpiece import targets

    tree = tmp_path / "tree"
    for folder in targets.MPY_FOLDERS:
        shutil.copytree(targets.ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    monkeypatch.setattr(targets, "ROOT", tree)
    version = tree / "firmware" / "version.py"

    def fw_of_the_test_target():
        target = make_target("unix")
        assert not list((target.tree / "firmware").glob("*.py")) and (target.tree / "firmware" / "app.mpy").exists()
        with target as (device, _):
            return target.tree, device.hello()["fw"]

    first, fw = fw_of_the_test_target()
    assert fw == re.search(r'FW_VERSION = "(.*)"', version.read_text())[1]
    assert fw_of_the_test_target() == (first, fw)  # the same sources: the same compiled tree
    version.write_text(re.sub(r'FW_VERSION = ".*"', 'FW_VERSION = "9.9.9-edited"', version.read_text()))
    second, fw = fw_of_the_test_target()
    assert fw == "9.9.9-edited" and second != first


def test_new_compiler_options_compile_the_tree_again(tmp_path, monkeypatch):
    """The compiled tree is kept under a hash that covers the boards' mpy-cross
    options (boards/build.py): a tree compiled with other options never runs."""
    from handpiece import targets

    before = targets._sources_key()
    build_py = tmp_path / "build.py"
    build_py.write_text(targets.BUILD_PY.read_text().replace('MPY_FLAGS = ("-X", "no-source-lines")',
                                                              'MPY_FLAGS = ()'))
    assert build_py.read_text() != targets.BUILD_PY.read_text()
    monkeypatch.setattr(targets, "BUILD_PY", build_py)
    assert targets._sources_key() != before


def test_targets_give_a_reason_for_each_capability_they_lack():
    from handpiece.rig import CAPABILITIES
    from handpiece.targets import Rp2EmuTarget, SerialTarget

    for target in (Rp2EmuTarget, SerialTarget):
        assert target.capabilities <= set(CAPABILITIES)
        assert set(target.lacking) == set(CAPABILITIES) - target.capabilities, target.name


def test_a_needs_marker_must_name_a_capability(tmp_path):
    (tmp_path / "test_x.py").write_text("import pytest\n\n@pytest.mark.needs_photodiode\n"
                                        "def test_x(device):\n    pass\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 4 and "needs_photodiode names no capability" in r.stdout + r.stderr


def test_fresh_targets_follow_the_target_option(tmp_path):
    """Hypothesis tests make a fresh target per example from --target, and
    skip, saying why, where it lacks what they need."""
    port = tmp_path / "ttyDUT"
    port.write_text("")  # a stand-in path: nothing is opened
    (tmp_path / "test_x.py").write_text(
        "import pytest\nfrom handpiece.targets import SerialTarget\n\n"
        "def test_made(fresh_target):\n    assert isinstance(fresh_target(), SerialTarget)\n\n"
        "@pytest.mark.needs_virtual_clock\ndef test_timed(fresh_target):\n    pass\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--target",
                        f"serial:{port}", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "1 passed, 1 skipped" in r.stdout, r.stdout + r.stderr
    assert "a real board runs in real time" in r.stdout


SWEEP = '''import pytest
from hypothesis import given, strategies as hs
from handpiece.pytest_plugin import target_settings

@pytest.mark.safety("SR-3")
@target_settings(max_examples=30)
@given(x=hs.integers())
def test_sweep(fresh_target, x):
    with open("examples.txt", "a") as f:
        f.write("%d\\n" % x)
'''


@pytest.mark.parametrize("spec,run", [("unix", 30), ("rp2-emu:{image}", 4), ("serial:{port}", 30)])
def test_a_target_declares_the_sample_of_a_fresh_target_sweep(tmp_path, spec, run):
    """A Hypothesis test over fresh targets runs its whole sample where an
    example is cheap, and the emulated chip's smaller one (a boot each),
    named in the output and in the requirements' table."""
    (tmp_path / "test_x.py").write_text(SWEEP)
    (tmp_path / "x.uf2").write_bytes(b"")  # a stand-in: no example opens its target
    (tmp_path / "ttyDUT").write_text("")
    spec = spec.format(image=tmp_path / "x.uf2", port=tmp_path / "ttyDUT")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--target", spec,
                        "--sr-report", "sr.md", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len((tmp_path / "examples.txt").read_text().split()) == run
    table = (tmp_path / "sr.md").read_text()
    if run < 30:
        assert "test_x.py::test_sweep: 4 of its 30 Hypothesis examples" in r.stdout
        assert "smaller samples on rp2-emu: each example boots the emulated chip" in r.stdout
        assert "| passed (4 of 30 examples) |" in table
    else:
        assert "smaller samples" not in r.stdout and "| passed |" in table
