"""pytest plugin: --target, device/rig/station fixtures, the safety marker,
the serial traffic of a failed test saved to a log file, and the safety
requirements' traceability table (--sr-report). Works under pytest-xdist:
the summary and the table are made in the controller from the workers' reports."""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

from .benchrig import parse_rig_spec
from .lab import labgrid_target
from .rig import CAPABILITIES
from .srreport import SrReport
from .strategy import Station
from .rp2emu import EmulatorError, find_node
from .targets import TargetError, find_micropython, make_target, target_class

SR_RE = re.compile(r"^SR-([1-9]|1[0-5])$")

# The --target's cap on Hypothesis examples per test (its max_examples) and
# why, set in pytest_configure, before the test modules are imported and
# their target_settings() applied.
_EXAMPLES: dict = {"cap": None, "why": "", "target": ""}


def target_settings(max_examples: int, **kwargs):
    """hypothesis.settings for a test that makes a fresh target per example:
    `max_examples` is its whole sample (the simulated board runs it all); a
    target whose examples cost more (a boot of an emulated chip) runs at most
    its own max_examples of them, the same assertions on each, and the run's
    output and the requirements' table say so. No deadline (an example is a
    firmware's life), the same examples each run, and a fixture made once per
    test is the factory the examples call."""
    from hypothesis import HealthCheck, settings

    cap = _EXAMPLES["cap"]
    run = max_examples if cap is None else min(max_examples, cap)
    kwargs = {"deadline": None, "derandomize": True,
              "suppress_health_check": [HealthCheck.function_scoped_fixture], **kwargs}

    def apply(test):
        return pytest.mark.examples(run, max_examples)(settings(max_examples=run, **kwargs)(test))
    return apply


def pytest_addoption(parser):
    g = parser.getgroup("handpiece")
    g.addoption("--target", default="unix", help="unix (simulated board, default), serial:/dev/ttyACM0[@baud], "
                "or rp2-emu[:IMAGE.uf2] (the rp2 image on an emulated RP2040)")
    g.addoption("--rig", default=None, metavar="serial:PORT[@baud]",
                help="the bench rig (boards/rig_pico) beside a --target serial:PORT board")
    g.addoption("--micropython", default=None, help="micropython binary for the unix target "
                "(default: $MICROPY_MICROPYTHON, else the venv's)")
    g.addoption("--hil-logs", default="test-logs", help="folder for the traffic logs of failed tests")
    g.addoption("--safety", action="append", default=[], metavar="SR-n",
                help="run only the tests marked with this safety requirement (repeatable)")
    if importlib.util.find_spec("labgrid") is None:  # with labgrid, its own plugin has --lg-env
        g.addoption("--lg-env", default=None, metavar="ENV.yaml",
                    help="take the board and rig from a labgrid place (needs labgrid: make lab-setup)")
    g.addoption("--sr-report", default=None, metavar="PATH",
                help="write the safety requirements' traceability table (Markdown) to PATH; "
                "a report from another target at PATH keeps its column")


def pytest_sessionstart(session):
    """A target that cannot work stops the run at once, with one clear line,
    instead of failing every test the same way."""
    spec = session.config.getoption("--target", default="unix")
    lg_env = getattr(session.config.option, "lg_env", None)
    if lg_env:
        if importlib.util.find_spec("labgrid") is None:
            pytest.exit(f"--lg-env {lg_env}: labgrid is not installed here: make lab-setup, then use .venv-lab",
                        returncode=2)
        if getattr(session.config.option, "numprocesses", None):
            pytest.exit(f"--lg-env {lg_env}: a place is one bench, one test at a time: run without -n",
                        returncode=2)
        return  # the board and the rig come from the place
    if spec.startswith("serial:") and getattr(session.config.option, "numprocesses", None):
        pytest.exit(f"--target {spec}: one board runs one test at a time: run without -n (or with -n 0)",
                    returncode=2)
    try:
        if spec == "unix":
            find_micropython(session.config.getoption("--micropython", default=None))
        elif spec == "rp2-emu" or spec.startswith("rp2-emu:"):
            find_node()
            if spec[8:] and not os.path.isfile(spec[8:]):
                raise TargetError(f"no UF2 image at {spec[8:]}: run `make image BOARD=rp2`")
        else:
            port = make_target(spec).port
            if not os.path.exists(port):
                raise TargetError(f"serial port {port} does not exist (is the board plugged in?)")
    except (TargetError, EmulatorError) as e:
        pytest.exit(f"--target {spec}: {e}", returncode=2)
    rig = session.config.getoption("--rig", default=None)
    if rig:
        try:
            make_target(spec, rig=rig)  # a rig beside a board, in a valid spec
            rig_port = parse_rig_spec(rig)[0]
            if not os.path.exists(rig_port):
                raise TargetError(f"serial port {rig_port} does not exist (is the rig plugged in?)")
        except TargetError as e:
            pytest.exit(f"--rig {rig}: {e}", returncode=2)


def pytest_configure(config):
    config.addinivalue_line("markers", "safety(sr): the safety requirement (SR-n) a test verifies")
    config.addinivalue_line("markers", "examples(run, whole): Hypothesis examples run of the test's whole "
                            "sample (target_settings)")
    cls = None if getattr(config.option, "lg_env", None) else target_class(config.getoption("--target"))
    _EXAMPLES.update(cap=getattr(cls, "max_examples", None), why=getattr(cls, "examples_why", ""),
                     target=getattr(cls, "name", ""))
    config.addinivalue_line("markers", "needs_rig: the test drives the rig (skipped without one)")
    for name, what in CAPABILITIES.items():
        config.addinivalue_line("markers", f"needs_{name}: the test needs {what} (skipped on targets without)")
    path = config.getoption("--sr-report", default=None)
    if path and not hasattr(config, "workerinput"):  # the xdist controller, or a run without xdist
        config.pluginmanager.register(SrReport(config, Path(path)), "handpiece-sr-report")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for m in item.iter_markers():
            if m.name.startswith("needs_") and m.name != "needs_rig" and m.name[6:] not in CAPABILITIES:
                raise pytest.UsageError(f"{item.nodeid}: {m.name} names no capability; "
                                        f"rig.CAPABILITIES has {', '.join(CAPABILITIES)}")
        for m in item.iter_markers("safety"):
            for sr in m.args:
                if not SR_RE.match(str(sr)):
                    raise pytest.UsageError(f"{item.nodeid}: safety marker {sr!r} is not SR-1..SR-15")
                item.user_properties.append(("safety", str(sr)))  # into the JUnit XML (--junitxml)
    wanted = set(config.getoption("--safety", default=[]))
    for sr in wanted:
        if not SR_RE.match(sr):
            raise pytest.UsageError(f"--safety {sr!r} is not SR-1..SR-15")
    if wanted:
        keep, drop = [], []
        for item in items:
            marked = {str(sr) for m in item.iter_markers("safety") for sr in m.args}
            (keep if marked & wanted else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


@pytest.fixture(scope="session")
def target_spec(request) -> str:
    return request.config.getoption("--target")


def missing_capabilities(item, capabilities) -> list[str]:
    """The needs_<capability> markers of `item` the target cannot meet."""
    needed = [m.name[len("needs_"):] for m in item.iter_markers() if m.name.startswith("needs_")]
    return [c for c in needed if c in CAPABILITIES and c not in capabilities]


@pytest.fixture
def hil(request, target_spec):
    """The opened target: (device, rig). A fresh firmware per test on the unix target."""
    try:
        if getattr(request.config.option, "lg_env", None):
            target = labgrid_target(request.getfixturevalue("env"))  # labgrid's fixture, from --lg-env
            target_spec = f"labgrid place of {request.config.option.lg_env}"
        else:
            target = make_target(target_spec, request.config.getoption("--micropython"),
                                 rig=request.config.getoption("--rig"))
    except TargetError as e:
        pytest.fail(str(e), pytrace=False)
    missing = missing_capabilities(request.node, getattr(target, "capabilities", frozenset()))
    if missing:
        target.close()
        why = getattr(target, "lacking", {}).get(missing[0])
        pytest.skip(f"needs {CAPABILITIES[missing[0]]}: the {target_spec} target has none"
                    + (f" ({why})" if why else ""))
    try:
        device, rig = target.open()
    except TargetError as e:
        target.close()
        pytest.fail(str(e), pytrace=False)
    except BaseException:
        target.close()  # no firmware process outlives a failed start
        raise
    request.node._hil_target = target
    yield device, rig
    problems = list(getattr(rig, "problems", ()))
    target.close()
    if problems:
        pytest.fail(f"the bench rig's record is incomplete (FIFO ran dry or events lost): {problems[:3]}",
                    pytrace=False)


@pytest.fixture
def fresh_target(request, target_spec):
    """A factory of fresh, unopened --target targets (`with fresh_target() as
    (device, rig)`), for Hypothesis tests: a fixture is made once per test, and
    each example needs a firmware of its own. Skips as `hil` does."""
    lg_env = getattr(request.config.option, "lg_env", None)
    if lg_env:
        env = request.getfixturevalue("env")
        target_spec = f"labgrid place of {lg_env}"

    def make():
        if lg_env:
            target = labgrid_target(env)
        else:
            target = make_target(target_spec, request.config.getoption("--micropython"),
                                 rig=request.config.getoption("--rig"))
        request.node._hil_target = target  # its traffic is logged if the test fails
        return target

    try:
        target = make()
    except TargetError as e:
        pytest.fail(str(e), pytrace=False)
    target.close()
    missing = missing_capabilities(request.node, getattr(target, "capabilities", frozenset()))
    if missing:
        why = getattr(target, "lacking", {}).get(missing[0])
        pytest.skip(f"needs {CAPABILITIES[missing[0]]}: the {target_spec} target has none"
                    + (f" ({why})" if why else ""))
    return make


@pytest.fixture
def device(hil):
    return hil[0]


@pytest.fixture
def rig(hil):
    if hil[1] is None:
        pytest.skip("needs a rig: the simulated board has one; no bench rig is configured")
    return hil[1]


@pytest.fixture
def station(hil) -> Station:
    return Station(*hil)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    rep.safety = [str(sr) for m in item.iter_markers("safety") for sr in m.args]
    cut = [list(m.args) for m in item.iter_markers("examples") if m.args[0] < m.args[1]]
    if cut:
        rep.examples = cut[0]  # [run, whole]: a smaller sample than the test's own
    target = getattr(item, "_hil_target", None)
    if rep.failed and target is not None and getattr(target, "device", None):
        folder = Path(item.config.getoption("--hil-logs"))
        folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
        path = folder / f"{name}.{rep.when}.log"
        parts = ["# serial traffic", target.device.t.dump_log()]
        rig = getattr(target, "rig", None)
        if rig is not None:
            parts += ["# rig notifications", "\n".join(rig.log)]
        if hasattr(target, "stderr"):
            parts += ["# firmware stderr", target.stderr()]
        path.write_text("\n".join(parts) + "\n")
        rep.sections.append(("handpiece", f"traffic log: {path}"))



def pytest_terminal_summary(terminalreporter):
    """The tests that ran a smaller sample on this target, then one line per
    safety requirement: how its tests ended in this run."""
    cut = {}
    for outcome in ("passed", "failed"):
        for rep in terminalreporter.stats.get(outcome, []):
            if rep.when == "call" and getattr(rep, "examples", None):
                cut[rep.nodeid] = rep.examples
    if cut:
        terminalreporter.section(f"smaller samples on {_EXAMPLES['target']}: {_EXAMPLES['why']}")
        for nodeid, (run, whole) in sorted(cut.items()):
            terminalreporter.write_line(f"{nodeid}: {run} of its {whole} Hypothesis examples")
    tally: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped"):
        for rep in terminalreporter.stats.get(outcome, []):
            if outcome == "passed" and rep.when != "call":
                continue
            for sr in getattr(rep, "safety", ()):
                tally.setdefault(sr, {}).setdefault(outcome, 0)
                tally[sr][outcome] += 1
    if not tally:
        return
    terminalreporter.section("safety requirements")
    for sr in sorted(tally, key=lambda s: int(s[3:])):
        counts = ", ".join(f"{n} {o}" for o, n in sorted(tally[sr].items()))
        terminalreporter.write_line(f"{sr:6} {counts}")
