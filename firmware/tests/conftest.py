"""Collect firmware unit tests (mp_test_*.py) and run each test function
inside the MicroPython Unix port, not CPython: the target is MicroPython."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from handpiece.targets import find_micropython, micropython_argv

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "mp_runner.py"
TEST_RE = re.compile(r"^def (test_\w+)\(", re.M)


def pytest_collect_file(file_path: Path, parent):
    if file_path.name.startswith("mp_test_") and file_path.suffix == ".py":
        return MicroPythonFile.from_parent(parent, path=file_path)
    return None


class MicroPythonFile(pytest.File):
    def collect(self):
        for name in TEST_RE.findall(self.path.read_text()):
            yield MicroPythonItem.from_parent(self, name=name)


class MicroPythonFailure(Exception):
    pass


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
