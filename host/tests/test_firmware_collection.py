"""The firmware unit tests are collected by MicroPython itself: a test is never
missed silently, and a test file can be named on the command line."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "firmware" / "tests"


def _pytest(args, cwd):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def _copy_collector(tmp_path: Path) -> Path:
    tests = tmp_path / "firmware" / "tests"
    tests.mkdir(parents=True)
    for name in ("conftest.py", "mp_runner.py"):
        shutil.copy(TESTS / name, tests / name)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tests


def test_a_file_named_on_the_command_line_runs_in_micropython():
    proc = _pytest([str(TESTS / "mp_test_interlocks.py")], ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout


def test_a_test_file_without_tests_fails_loudly(tmp_path):
    tests = _copy_collector(tmp_path)
    (tests / "mp_test_empty.py").write_text("def helper():\n    pass\n")
    proc = _pytest(["firmware/tests"], tmp_path)
    assert proc.returncode != 0
    assert "mp_test_empty.py defines no test_ function" in proc.stdout


def test_a_test_file_that_does_not_import_fails_loudly(tmp_path):
    tests = _copy_collector(tmp_path)
    (tests / "mp_test_broken.py").write_text("import no_such_module\n\ndef test_x():\n    pass\n")
    proc = _pytest(["firmware/tests"], tmp_path)
    assert proc.returncode != 0
    assert "does not import in MicroPython" in proc.stdout and "no_such_module" in proc.stdout


def test_tests_a_pattern_would_miss_are_collected(tmp_path):
    tests = _copy_collector(tmp_path)
    (tests / "mp_test_odd.py").write_text(
        "def test_spaced (): pass\n\n"
        "class _T:\n    pass\n\n"
        "test_assigned = lambda: None\n")
    proc = _pytest(["firmware/tests", "--collect-only"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mp_test_odd.py::test_spaced" in proc.stdout and "mp_test_odd.py::test_assigned" in proc.stdout
