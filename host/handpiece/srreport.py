"""The safety requirements' traceability table: SR -> requirement -> tests ->
outcome per target, in Markdown, as an auditor asks for it (`--sr-report PATH`).

The requirements' text comes from docs/requirements.md. A test belongs to
the SRs its `safety` markers name. Each run fills the column of its target;
a table already at PATH (from a run on another target) keeps its other
columns, so runs on the simulated board and on a bench make one table.
"""
from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "docs" / "requirements.md"
TITLE = "# Safety requirements: traceability"
NOT_RUN = "not run"
SR_ROW = re.compile(r"^\| (SR-\d+) \| (.+) \|$", re.M)


class RequirementsError(RuntimeError):
    pass


def read_requirements(path: Path = REQUIREMENTS) -> dict[str, str]:
    """SR-n -> its text, in the order of the table in docs/requirements.md."""
    try:
        text = path.read_text()
    except OSError as e:
        raise RequirementsError(f"cannot read the requirements {path}: {e.strerror}") from e
    reqs = {sr: body.strip() for sr, body in SR_ROW.findall(text)}
    if not reqs:
        raise RequirementsError(f"{path} has no requirement rows ('| SR-n | text |')")
    return reqs


def outcome(phases: dict[str, tuple[str, bool]]) -> str:
    """One word for a test from its setup/call/teardown reports: (outcome, xfail)."""
    if any(o == "failed" for w, (o, _) in phases.items() if w != "call"):
        return "error"
    call, xfail = phases.get("call", (None, False))
    if call == "failed":
        return "failed"
    if any(o == "skipped" for o, _ in phases.values()):
        return "xfailed" if xfail else "skipped"
    if call == "passed":
        return "xpassed" if xfail else "passed"
    return NOT_RUN


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _uncell(text: str) -> str:
    return text.strip().replace("\\|", "|")


def read_table(path: Path) -> tuple[list[str], dict[tuple[str, str], dict[str, str]]]:
    """A table this module wrote: its target columns and {(sr, test): {target: outcome}}.
    Anything else at PATH is not ours to merge with: an empty table."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return [], {}
    if not lines or lines[0] != TITLE:
        return [], {}
    rows = [re.split(r"(?<!\\)\|", ln)[1:-1] for ln in lines if ln.startswith("| ") and not ln.startswith("| ---")]
    if not rows or [c.strip() for c in rows[0][:3]] != ["SR", "requirement", "test"]:
        return [], {}
    targets = [_uncell(c) for c in rows[0][3:]]
    table: dict[tuple[str, str], dict[str, str]] = {}
    sr = ""
    for cells in rows[1:]:
        sr = cells[0].strip() or sr
        test = _uncell(cells[2]).strip("`")
        if test.startswith("**"):
            continue  # "no test" rows are made again from the requirements
        table[(sr, test)] = {t: _uncell(c) for t, c in zip(targets, cells[3:])}
    return targets, table


class SrReport:
    """A pytest plugin object: collects outcomes by test, writes the table at the end."""

    def __init__(self, config, path: Path):
        self.config = config
        self.path = path
        self.target = config.getoption("--target")
        self.requirements = read_requirements()
        self.tests: dict[str, list[str]] = {}  # nodeid -> its SRs
        self.phases: dict[str, dict[str, tuple[str, bool]]] = {}
        self.examples: dict[str, list[int]] = {}  # nodeid -> [run, whole]: a smaller sample on this target

    def pytest_collection_modifyitems(self, items):
        """Without xdist (and with --collect-only) the controller sees the items."""
        for item in items:
            self.tests.setdefault(item.nodeid, [str(sr) for m in item.iter_markers("safety") for sr in m.args])

    def pytest_runtest_logreport(self, report):
        srs = getattr(report, "safety", None)
        if srs is None:
            srs = [v for k, v in getattr(report, "user_properties", ()) if k == "safety"]
        self.tests.setdefault(report.nodeid, list(srs))
        self.phases.setdefault(report.nodeid, {})[report.when] = (report.outcome, hasattr(report, "wasxfail"))
        if getattr(report, "examples", None):
            self.examples[report.nodeid] = report.examples

    def pytest_sessionfinish(self, session):
        targets, table = read_table(self.path)
        if self.target not in targets:
            targets.append(self.target)
        for cols in table.values():
            cols[self.target] = NOT_RUN  # a test named before and not in this run
        for nodeid, srs in self.tests.items():
            word = outcome(self.phases.get(nodeid, {}))
            if nodeid in self.examples and word != NOT_RUN:
                word += " (%d of %d examples)" % tuple(self.examples[nodeid])
            for sr in srs:
                table.setdefault((sr, nodeid), {})[self.target] = word
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.render(targets, table))

    def render(self, targets: list[str], table: dict[tuple[str, str], dict[str, str]]) -> str:
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        out = [TITLE, "",
               f"Requirements: docs/requirements.md. Last run: target {self.target}, {when}, "
               f"commit {_commit()}. One row per requirement and test; a column per target.", "",
               "| SR | requirement | test | " + " | ".join(_cell(t) for t in targets) + " |",
               "| --- | --- | --- |" + " --- |" * len(targets)]
        srs = list(self.requirements) + sorted({sr for sr, _ in table} - set(self.requirements),
                                               key=lambda s: int(s[3:]))
        for sr in srs:
            tests = sorted(t for s, t in table if s == sr)
            text = _cell(self.requirements.get(sr, "(not in docs/requirements.md)"))
            if not tests:
                out.append(f"| {sr} | {text} | **no test in this run** |" + " |" * len(targets))
            for i, test in enumerate(tests):
                cols = table[(sr, test)]
                out.append(f"| {sr if i == 0 else ''} | {text if i == 0 else ''} | `{_cell(test)}` | "
                           + " | ".join(cols.get(t, NOT_RUN) for t in targets) + " |")
        return "\n".join(out) + "\n"


def _commit() -> str:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return r.stdout.strip() or "unknown"
