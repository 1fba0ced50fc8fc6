"""Mutation check (`make mutate`): do the safety tests catch a broken safety line?

Each mutant in tools/mutants.toml replaces one line in a temporary copy of the
tree; the tests the mutant names (its optional `tests` field), for a real
board's code (boards/shared, boards/<board> but the simulated boards/unix) the
board logic tests in the MicroPython Unix port, the unit tests of the mutated
module (firmware/tests/mp_test_<module>.py, if any), then the HIL tests marked
with its requirement (`pytest --safety SR-n`), run against that copy, stopping
at the first failure: one of them must fail ("killed"). A mutant that passes them all "survived":
a test is missing. The copy's own `host/` comes first on PYTHONPATH, so the
Unix target starts the copy's (mutated) firmware; this is checked before any
mutant runs, and so is the unmutated copy passing its SR-1 tests and every
named or board test the chosen mutants run (a broken copy would make every
mutant look killed).

Exit status: 0 when every mutant was killed; 1 when one survived, or a mutant's
line is not found exactly once (the table is stale), or a run could not be
judged (pytest usage error, nothing collected).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    sys.exit("tools/mutate.py needs Python 3.11 or later (tomllib)")

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "tools" / "mutants.toml"
SR_RE = re.compile(r"^SR-([1-9]|1[0-5])$")
FIELDS = {"id", "sr", "file", "in", "line", "to", "why", "tests"}
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "runs", "test-logs", "__pycache__", "*.egg-info")
TIMEOUT_S = 300  # one mutant's test run; a hang counts as killed, shown as "timeout"
CONTROL_SR = "SR-1"  # the unmutated copy must pass these tests first (a few seconds)
# The board logic tests (boards/tests/*_logic.py in the MicroPython Unix port,
# a few seconds): what kills a mutant of a real board's code.
BOARD_TESTS = ["host/tests/test_boards.py::test_board_logic_in_unix_port"]


class TableError(ValueError):
    pass


@dataclass
class Mutant:
    id: str
    srs: list[str]
    file: str
    scope: str
    line: str
    to: str
    why: str
    tests: tuple[str, ...] = ()  # pytest node ids or paths, run first
    lineno: int = 0  # 1-based, found by locate()


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # killed, timeout, survived, error
    seconds: float
    detail: str


def load_table(path: Path) -> list[Mutant]:
    data = tomllib.loads(path.read_text())
    mutants, seen = [], set()
    for n, m in enumerate(data.get("mutant", []), 1):
        where = f"{path.name} mutant #{n}"
        missing = {"id", "sr", "file", "line", "to", "why"} - m.keys()
        if missing:
            raise TableError(f"{where}: missing {', '.join(sorted(missing))}")
        if m.keys() - FIELDS:
            raise TableError(f"{where}: unknown field {', '.join(sorted(m.keys() - FIELDS))}")
        if m["id"] in seen:
            raise TableError(f"{where}: id {m['id']} used twice")
        seen.add(m["id"])
        srs = [m["sr"]] if isinstance(m["sr"], str) else list(m["sr"])
        bad = [s for s in srs if not SR_RE.match(str(s))]
        if not srs or bad:
            raise TableError(f"{where} ({m['id']}): sr must be SR-1..SR-15, got {m['sr']!r}")
        if m["line"].strip() != m["line"] or not m["line"] or "\n" in m["line"] + m["to"]:
            raise TableError(f"{where} ({m['id']}): line must be one line without its indentation")
        if m["to"].strip() == m["line"]:
            raise TableError(f"{where} ({m['id']}): the replacement is the original line")
        tests = m.get("tests", [])
        if not isinstance(tests, list) or not all(isinstance(t, str) and t.strip() == t and t for t in tests):
            raise TableError(f"{where} ({m['id']}): tests must be a list of pytest node ids or paths")
        mutants.append(Mutant(m["id"], srs, m["file"], m.get("in", ""), m["line"], m["to"].strip(), m["why"],
                              tuple(tests)))
    return mutants


def _block(lines: list[str], start: int, end: int, name: str) -> tuple[int, int]:
    """The lines [first, last) of the `def name` or `class name` in lines[start:end]."""
    pat = re.compile(rf"^(\s*)(def|class)\s+{re.escape(name)}\b")
    hits = [i for i in range(start, end) if pat.match(lines[i])]
    if len(hits) != 1:
        raise TableError(f"definition {name!r} found {len(hits)} times")
    head = hits[0]
    indent = len(pat.match(lines[head]).group(1))
    last = head + 1
    while last < end:
        text = lines[last]
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            break
        last += 1
    return head + 1, last


def locate(m: Mutant, root: Path) -> int:
    """Index of the mutant's line in its file; TableError unless exactly one,
    or when a test file it names does not exist."""
    path = root / m.file
    if not path.is_file():
        raise TableError(f"{m.id}: no file {m.file}")
    for t in m.tests:
        if not (root / t.split("::")[0]).exists():
            raise TableError(f"{m.id}: no test file {t.split('::')[0]}")
    lines = path.read_text().splitlines()
    start, end = 0, len(lines)
    try:
        for name in filter(None, m.scope.split(".")):
            start, end = _block(lines, start, end, name)
    except TableError as e:
        raise TableError(f"{m.id}: {m.file}: {e}") from None
    hits = [i for i in range(start, end) if lines[i].strip() == m.line]
    if len(hits) != 1:
        where = f"{m.file}" + (f" in {m.scope}" if m.scope else "")
        raise TableError(f"{m.id}: line found {len(hits)} times in {where} (want exactly 1): {m.line}")
    return hits[0]


def apply(m: Mutant, root: Path) -> None:
    path = root / m.file
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    i = m.lineno - 1
    old = lines[i]
    indent = old[: len(old) - len(old.lstrip())]
    lines[i] = indent + m.to + ("\n" if old.endswith("\n") else "")
    path.write_text("".join(lines))


def copy_tree(dst: Path) -> Path:
    tree = dst / "tree"
    shutil.copytree(ROOT, tree, ignore=COPY_IGNORE)
    return tree


def env_for(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "host")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_copy(tree: Path, mutants: list[Mutant]) -> None:
    """The Unix target in the copy must start the copy's firmware, not ours,
    and the unmutated copy must pass a few safety tests and every named or
    board test the mutants run: otherwise every mutant would look killed."""
    out = subprocess.run([sys.executable, "-c", "import handpiece.targets as t; print(t.ROOT)"],
                         cwd=tree, env=env_for(tree), capture_output=True, text=True)
    got = out.stdout.strip()
    if out.returncode != 0 or Path(got).resolve() != tree.resolve():
        sys.exit(f"make mutate: the copy's tests would run the firmware in {got or out.stderr.strip()!r}, "
                 f"not the copy {tree}")
    proc = _pytest(["hil_tests", "--safety", CONTROL_SR, "--hil-logs", str(tree / "test-logs")], tree)
    if proc.returncode != 0:
        sys.exit(f"make mutate: the unmutated copy fails its {CONTROL_SR} tests (exit {proc.returncode}); "
                 "run make test first:\n" + proc.stdout[-2000:])
    named = list(dict.fromkeys(t for m in mutants for t in m.tests + tuple(board_tests(m))))
    if named:
        proc = _pytest(named, tree)
        if proc.returncode != 0:
            sys.exit(f"make mutate: the unmutated copy fails the mutants' own tests (exit {proc.returncode}); "
                     "run make test first:\n" + proc.stdout[-2000:])


def unit_tests(m: Mutant, tree: Path) -> str:
    """The unit tests of the mutated module, if it has any (firmware/tests
    also tests shared board modules, e.g. mp_test_filestore): redundant
    guards (a check behind another check) can only be caught there."""
    path = Path(m.file)
    if (tree / "firmware" / "tests" / f"mp_test_{path.stem}.py").is_file():
        return f"mp_test_{path.stem}"
    return ""


def board_tests(m: Mutant) -> list[str]:
    """The board logic tests, for a mutant of a real board's code: the HIL
    tests run the simulated board (boards/unix), not this code."""
    parts = Path(m.file).parts
    if parts[0] == "boards" and len(parts) > 2 and parts[1] != "unix":
        return BOARD_TESTS
    return []


def _pytest(args: list[str], tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", *args], cwd=tree, env=env_for(tree),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def run_one(m: Mutant) -> Outcome:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        tree = copy_tree(Path(tmp))
        apply(m, tree)
        runs = [list(m.tests)] if m.tests else []
        if board_tests(m):
            runs.append(board_tests(m))
        unit = unit_tests(m, tree)
        if unit:
            runs.append(["firmware/tests", "-k", unit])
        hil = ["hil_tests", "--hil-logs", str(Path(tmp) / "logs")]
        runs.append(hil + [a for sr in m.srs for a in ("--safety", sr)])
        passed = 0
        for args in runs:
            try:
                proc = _pytest(args, tree)
            except subprocess.TimeoutExpired:
                return Outcome(m, "timeout", time.monotonic() - t0, f"no verdict in {TIMEOUT_S} s")
            if proc.returncode == 1:
                failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M)
                return Outcome(m, "killed", time.monotonic() - t0, failed[0] if failed else "a test failed")
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                return Outcome(m, "error", time.monotonic() - t0,
                               f"pytest {' '.join(args[:3])}: exit {proc.returncode}: " + " | ".join(tail))
            found = re.findall(r"(\d+) passed", proc.stdout)  # the last is pytest's own total
            passed += int(found[-1]) if found else 0
    return Outcome(m, "survived", time.monotonic() - t0, f"{passed} tests passed")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    ap.add_argument("--only", action="append", default=[], metavar="ID", help="run only this mutant (repeatable)")
    ap.add_argument("--check", action="store_true", help="only check that every line is found once")
    args = ap.parse_args(argv)

    try:
        mutants = load_table(args.table)
    except (TableError, tomllib.TOMLDecodeError) as e:
        print(f"make mutate: {e}", file=sys.stderr)
        return 1
    stale = []
    for m in mutants:
        try:
            m.lineno = locate(m, ROOT) + 1
        except TableError as e:
            stale.append(str(e))
    uncovered = [f"SR-{n}" for n in range(1, 16) if not any(f"SR-{n}" in m.srs for m in mutants)]
    if stale or uncovered:
        for s in stale:
            print(f"STALE     {s}")
        if uncovered:
            print(f"UNCOVERED no mutant for {', '.join(uncovered)}")
        print(f"make mutate: {len(stale)} stale mutants, {len(uncovered)} SRs without one: update {_shown(args.table)}",
              file=sys.stderr)
        return 1
    if args.only:
        unknown = set(args.only) - {m.id for m in mutants}
        if unknown:
            print(f"make mutate: no mutant {', '.join(sorted(unknown))}", file=sys.stderr)
            return 1
        mutants = [m for m in mutants if m.id in args.only]
    if args.check:
        print(f"{len(mutants)} mutants, every line found once")
        return 0

    with tempfile.TemporaryDirectory(prefix="mutate-check-") as tmp:
        check_copy(copy_tree(Path(tmp)), mutants)
    print(f"{len(mutants)} mutants, {args.jobs} at a time")
    t0 = time.monotonic()
    outcomes = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for o in pool.map(run_one, mutants):
            m = o.mutant
            print(f"{o.verdict.upper():9} {m.id:40} {','.join(m.srs):6} {m.file}:{m.lineno}  "
                  f"{o.seconds:5.1f} s  {o.detail}", flush=True)
            outcomes.append(o)
    wall = time.monotonic() - t0

    killed = [o for o in outcomes if o.verdict in ("killed", "timeout")]
    survived = [o for o in outcomes if o.verdict == "survived"]
    errors = [o for o in outcomes if o.verdict == "error"]
    print(f"\n{len(killed)}/{len(outcomes)} killed, {len(survived)} survived, {len(errors)} errors, "
          f"{wall:.0f} s wall")
    if survived:
        print("\nSurvivors (each is a missing test):")
        for o in survived:
            m = o.mutant
            print(f"  {m.id} ({','.join(m.srs)}) {m.file}:{m.lineno}\n"
                  f"    {m.line}\n    -> {m.to}\n    {m.why}")
    for o in errors:
        print(f"ERROR {o.mutant.id}: {o.detail}", file=sys.stderr)
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main())
