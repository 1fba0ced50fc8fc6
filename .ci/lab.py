"""CI proof of the labgrid path, on this machine: a one-bench lab.

Starts a labgrid coordinator and an exporter on localhost; the exporter
serves a bench whose device is the simulated board on its real clock behind
a pty and whose rig is the bench rig's firmware (boards/tests/rig_peer.py)
behind another, both through ser2net as labgrid does for USB ports. A place
takes the bench, is acquired, and a subset of the HIL suite runs through it
with `--lg-env`. Every process started here is stopped here, however it ends.

    make lab-test    (.venv-lab/bin/python .ci/lab.py; needs ser2net on PATH)

The two boards are not wired to each other here, so the subset is the tests
that drive the device over its serial line; the rig is reached and reset but
moves nothing the device could see.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # labgrid's tools beside this Python (.venv-lab)
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"
SUBSET = ["hil_tests/test_protocol.py", "-k",
          "handshake_reports or bad_hello or unframed or status_byte or need_a_frame or bad_checksum or sequence_gap "
          "or repeated_frame or unknown_command or garbage or oversized or truncated or blank"]
# (not test_framed_command_needs_handshake: it needs a device no test has greeted, and a bench's board
# runs on from test to test)
MIN_TESTS = 21  # the subset's size: a filter that matches less must not pass
PLACE = "ci-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_pty(argv, env, log):
    """Start argv with a pty's master as its stdin/stdout; returns (process, slave path, slave fd)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    proc = subprocess.Popen(argv, stdin=master, stdout=master, stderr=log, env=env, start_new_session=True)
    os.close(master)
    return proc, os.ttyname(slave), slave


def wait_for(what, check, timeout_s=30.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    sys.exit(f"lab: {what} did not come within {timeout_s:.0f} s")


def main() -> int:
    if shutil.which("ser2net") is None:
        sys.exit("lab: ser2net is not installed (Debian: apt-get install ser2net): labgrid exports ports with it")
    if not MICROPYTHON.exists():
        sys.exit(f"lab: {MICROPYTHON} is missing: run `make setup` first")
    work = Path(tempfile.mkdtemp(prefix="hilt-lab-"))
    coordinator = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, LG_COORDINATOR=coordinator)
    env.pop("HP_RIG", None)
    procs, fds = [], []
    log = open(work / "services.log", "wb")
    ok = False

    def client(*args, check=True):
        r = subprocess.run([str(BIN / "labgrid-client"), "-p", PLACE, *args], env=env, cwd=work,
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode:
            sys.exit(f"lab: labgrid-client {' '.join(args)} failed: {r.stderr.strip()}")
        return r

    try:
        board_env = dict(env, HP_CLOCK="real", HP_READY_DELAY_MS="100")
        dut, dut_path, fd = on_pty([str(MICROPYTHON), str(ROOT / "boards" / "unix" / "main.py")], board_env, log)
        procs.append(dut)
        fds.append(fd)
        rig, rig_path, fd = on_pty([str(MICROPYTHON), str(ROOT / "boards" / "tests" / "rig_peer.py")], env, log)
        procs.append(rig)
        fds.append(fd)

        procs.append(subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", coordinator], cwd=work,
                                      stdout=log, stderr=log, start_new_session=True))
        host, port = coordinator.split(":")

        def listening():
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for("the coordinator", listening)
        (work / "exporter.yaml").write_text(
            "bench-1:\n"
            f"  dut:\n    cls: RawSerialPort\n    port: {dut_path}\n    speed: 115200\n"
            f"  rig:\n    cls: RawSerialPort\n    port: {rig_path}\n    speed: 115200\n")
        procs.append(subprocess.Popen([str(BIN / "labgrid-exporter"), "-c", coordinator, "-n", "ci-host",
                                       "--hostname", "127.0.0.1", "exporter.yaml"], cwd=work,
                                      stdout=log, stderr=log, start_new_session=True))
        wait_for("the exported bench", lambda: "ci-host/bench-1/NetworkSerialPort" in subprocess.run(
            [str(BIN / "labgrid-client"), "resources"], env=env, cwd=work, capture_output=True, text=True).stdout)
        client("create")
        client("add-match", "ci-host/bench-1/*")
        client("acquire")
        wait_for("both ports in the place", lambda: all(
            f"NetworkSerialPort/{name}" in client("show").stdout for name in ("dut", "rig")))
        # lab/bench.yaml, with this place's name
        (work / "bench.yaml").write_text((ROOT / "lab" / "bench.yaml").read_text().replace("bench-1", PLACE))

        r = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--lg-env",
                            str(work / "bench.yaml"), *SUBSET], cwd=ROOT, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        print(r.stdout)
        passed = r.stdout.count(" PASSED")
        if r.returncode == 0 and passed < MIN_TESTS:
            print(f"lab: only {passed} tests ran through the place, expected at least {MIN_TESTS}", file=sys.stderr)
            return 1
        client("release", check=False)
        ok = r.returncode == 0
        return r.returncode
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        for fd in fds:
            os.close(fd)
        log.close()
        if not ok:  # what the services said, for the CI log
            print((work / "services.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
