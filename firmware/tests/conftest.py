"""Collect firmware unit tests (mp_test_*.py) and run each test function
inside the MicroPython Unix port, not CPython: the target is MicroPython.

The test functions are listed by MicroPython itself (mp_runner.py imports the
module), not read off the source: a module that does not import, or defines no
test, fails its collection loudly instead of passing with nothing run. A file
named on the command line is collected the same way (pytest would otherwise
import it into CPython, where the firmware modules do not exist)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from handpiece.targets import find_micropython, micropython_argv

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "mp_runner.py"


def _is_mp_test(path: Path) -> bool:
    return path.name.startswith("mp_test_") and path.suffix == ".py"


def pytest_collect_file(file_path: Path, parent):
    # A file named on the command line reaches pytest_pycollect_makemodule below.
    if _is_mp_test(file_path) and not parent.session.isinitpath(file_path):
        return MicroPythonFile.from_parent(parent, path=file_path)
    return None


def pytest_pycollect_makemodule(module_path: Path, parent):
    if _is_mp_test(module_path):
        return MicroPythonFile.from_parent(parent, path=module_path)
    return None


class MicroPythonFailure(Exception):
    pass


class MicroPythonFile(pytest.File):
    def collect(self):
        mp = find_micropython(self.config.getoption("--micropython"))
        proc = subprocess.run([mp, str(RUNNER), str(self.path)], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise MicroPythonFailure(f"{self.path.name} does not import in MicroPython:\n{proc.stdout}{proc.stderr}")
        names = proc.stdout.split()
        if not names:
            raise MicroPythonFailure(f"{self.path.name} defines no test_ function")
        for name in names:
            yield MicroPythonItem.from_parent(self, name=name)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class MicroPythonItem(pytest.Item):
    def runtest(self):
        mp = find_micropython(self.config.getoption("--micropython"))
        proc = subprocess.run([*micropython_argv(mp), str(RUNNER), str(self.path), self.name],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not proc.stdout.rstrip().endswith("PASS"):
            raise MicroPythonFailure(proc.stdout + proc.stderr)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return f"in the MicroPython Unix port:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"micropython: {self.name}"
