"""pytest plugin: --target, device/rig/station fixtures, the safety marker,
and the serial traffic of a failed test saved to a log file."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .strategy import Station
from .rp2emu import EmulatorError, find_node
from .targets import TargetError, find_micropython, make_target

SR_RE = re.compile(r"^SR-([1-9]|1[0-5])$")


def pytest_addoption(parser):
    g = parser.getgroup("handpiece")
    g.addoption("--target", default="unix", help="unix (simulated board, default), serial:/dev/ttyACM0[@baud], "
                "or rp2-emu[:IMAGE.uf2] (the rp2 image on an emulated RP2040)")
    g.addoption("--micropython", default=None, help="micropython binary for the unix target "
                "(default: $MICROPY_MICROPYTHON, else the venv's)")
    g.addoption("--hil-logs", default="test-logs", help="folder for the traffic logs of failed tests")


def pytest_sessionstart(session):
    """A target that cannot work stops the run at once, with one clear line,
    instead of failing every test the same way."""
    spec = session.config.getoption("--target", default="unix")
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


def pytest_configure(config):
    config.addinivalue_line("markers", "safety(sr): the safety requirement (SR-n) a test verifies")
    config.addinivalue_line("markers", "needs_rig: the test drives the rig (skipped without one)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for m in item.iter_markers("safety"):
            for sr in m.args:
                if not SR_RE.match(str(sr)):
                    raise pytest.UsageError(f"{item.nodeid}: safety marker {sr!r} is not SR-1..SR-15")


@pytest.fixture(scope="session")
def target_spec(request) -> str:
    return request.config.getoption("--target")


@pytest.fixture
def hil(request, target_spec):
    """The opened target: (device, rig). A fresh firmware per test on the unix target."""
    try:
        target = make_target(target_spec, request.config.getoption("--micropython"))
    except TargetError as e:
        pytest.fail(str(e), pytrace=False)
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
    target.close()


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
    """One line per safety requirement: how its tests ended in this run."""
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
