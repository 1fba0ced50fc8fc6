"""The labgrid path without labgrid: the port URLs a place's resources give,
and a clear stop where labgrid is not installed (`make lab-test` runs the
whole path on a labgrid place: .ci/lab.py)."""
import subprocess
import sys
from types import SimpleNamespace

import pytest

from handpiece.lab import port_url
from handpiece.targets import TargetError


def test_network_serial_ports_become_pyserial_urls():
    assert port_url(SimpleNamespace(protocol="rfc2217", host="lab7", port=4001, name="dut")) == \
        "rfc2217://lab7:4001?ign_set_control"
    assert port_url(SimpleNamespace(protocol="raw", host="lab7", port=4002, name="rig")) == "socket://lab7:4002"
    with pytest.raises(TargetError, match="protocol 'ssh' is neither rfc2217 nor raw"):
        port_url(SimpleNamespace(protocol="ssh", host="lab7", port=22, name="dut"))


def test_lg_env_without_labgrid_stops_the_run(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(device):\n    pass\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lg-env", "bench.yaml"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    assert "--lg-env bench.yaml: labgrid is not installed here: make lab-setup" in r.stdout + r.stderr
