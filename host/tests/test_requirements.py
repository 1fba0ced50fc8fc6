"""The safety requirements in docs/requirements.md, the tests that name them,
and the plugin's reports of them (terminal summary, --sr-report, JUnit XML),
also when pytest-xdist spreads the tests over workers."""
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from handpiece.pytest_plugin import SR_RE
from handpiece.srreport import read_requirements, read_table

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = '''import pytest

@pytest.mark.safety("SR-1")
def test_one():
    pass

@pytest.mark.safety("SR-1")
@pytest.mark.safety("SR-3")
def test_two():
    assert 0

@pytest.mark.safety("SR-2")
def test_skip():
    pytest.skip("no such thing here")

def test_plain():
    pass
'''


def pytest_run(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_requirements_page_lists_sr_1_to_15():
    reqs = read_requirements()
    assert list(reqs) == [f"SR-{n}" for n in range(1, 16)]
    assert all(SR_RE.match(sr) for sr in reqs)
    assert all(len(text) > 40 for text in reqs.values())


def test_every_requirement_has_a_test_in_the_suite(tmp_path):
    """Collect the whole suite as `make test` does and read the table it gives."""
    report = tmp_path / "sr.md"
    r = pytest_run(ROOT, "--collect-only", "-n", "0", "--sr-report", str(report))
    assert r.returncode == 0, r.stdout + r.stderr
    targets, table = read_table(report)
    assert targets == ["unix"]
    named = {sr for sr, _ in table}
    assert set(read_requirements()) - named == set(), "requirements no test names"
    assert "**no test in this run**" not in report.read_text()
    assert {cols["unix"] for cols in table.values()} == {"not run"}


def test_reports_from_xdist_workers_are_gathered(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    report, junit = tmp_path / "sr.md", tmp_path / "junit.xml"
    r = pytest_run(tmp_path, "-n", "2", "--sr-report", str(report), "--junitxml", str(junit))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bringing up nodes" in r.stdout  # the tests ran in xdist workers
    summary = r.stdout.split("safety requirements")[1]
    assert re.search(r"^SR-1 +1 failed, 1 passed$", summary, re.M)
    assert re.search(r"^SR-2 +1 skipped$", summary, re.M)
    assert re.search(r"^SR-3 +1 failed$", summary, re.M)

    targets, table = read_table(report)
    assert targets == ["unix"]
    assert table == {
        ("SR-1", "test_sample.py::test_one"): {"unix": "passed"},
        ("SR-1", "test_sample.py::test_two"): {"unix": "failed"},
        ("SR-3", "test_sample.py::test_two"): {"unix": "failed"},
        ("SR-2", "test_sample.py::test_skip"): {"unix": "skipped"},
    }
    text = report.read_text()
    assert read_requirements()["SR-2"] in text
    assert text.count("**no test in this run**") == 12  # SR-4..SR-15 have none in this sample

    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"test_one", "test_two", "test_skip", "test_plain"}
    props = {n: sorted(p.get("value") for p in c.iter("property") if p.get("name") == "safety")
             for n, c in cases.items()}
    assert props == {"test_one": ["SR-1"], "test_two": ["SR-1", "SR-3"], "test_skip": ["SR-2"], "test_plain": []}


def test_a_second_target_adds_its_column(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    report = tmp_path / "sr.md"
    pytest_run(tmp_path, "-n", "0", "--sr-report", str(report))
    (tmp_path / "test_sample.py").write_text(SAMPLE.replace("assert 0", "pass").replace("def test_skip", "def _x"))
    # a path that exists stands in for a board: these tests open no device
    r = pytest_run(tmp_path, "-n", "0", "--sr-report", str(report), "--target", "serial:/dev/null")
    assert r.returncode == 0, r.stdout + r.stderr
    targets, table = read_table(report)
    assert targets == ["unix", "serial:/dev/null"]
    assert table[("SR-1", "test_sample.py::test_two")] == {"unix": "failed", "serial:/dev/null": "passed"}
    assert table[("SR-2", "test_sample.py::test_skip")] == {"unix": "skipped", "serial:/dev/null": "not run"}


def test_one_board_refuses_parallel_workers(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    r = pytest_run(tmp_path, "-n", "2", "--target", "serial:/dev/null")
    assert r.returncode == 2
    assert "one board runs one test at a time" in r.stdout + r.stderr
