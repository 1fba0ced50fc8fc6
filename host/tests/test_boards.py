"""Real-board code checked without boards: compile, type-check, HAL contract,
and board logic in the MicroPython Unix port with fakes of the port modules.

Nothing here runs on hardware. The board logic lives in boards/tests/*.py
(MicroPython scripts, one PASS/FAIL line per test); this file drives them.
"""
import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MICROPYTHON = VENV_BIN / "micropython"

# docs/requirements.md, device figures: the figures every board's hard limits must carry.
DESIGN_LIMITS = {"power_w_max": 3000, "width_us_min": 100, "width_us_max": 150, "rate_hz_min": 10, "rate_hz_max": 40,
                 "avg_power_mw_max": 10500}
REFERENCE_SESSION_J = 1250  # the reference program must fit under the board's session cap
# Facts of each MCU, from its datasheet: the mpy-cross arch its core runs and
# the hardware watchdog's range. A new board on a known MCU adds nothing here.
MCU_ARCH = {"RP2040": "armv6m", "STM32F405": "armv7emsp", "ESP32-S3": "xtensawin"}
WDT_MAX_MS = {"RP2040": 8388, "STM32F405": 32768, "ESP32-S3": 60_000}


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "boards" / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = _load("build")
table = _load("table")
DEVICE_BOARDS = tuple(table.devices())
ALL_BOARDS = tuple(table.BOARDS)


def micropython(script, *args, cwd):
    r = subprocess.run([str(MICROPYTHON), str(ROOT / "boards" / "tests" / script), *args],
                       cwd=cwd, capture_output=True, text=True, timeout=60)
    return r


@pytest.mark.parametrize("board", ALL_BOARDS)
def test_every_module_compiles_for_its_arch(board, tmp_path):
    out = build.build(board, tmp_path / board)
    mpys = sorted(p.stem for p in out.glob("*.mpy"))
    want = sorted(p.stem for p in build.sources(board) if p.name not in build.SOURCE_ONLY)
    assert mpys == want
    for name in build.SOURCE_ONLY:
        src = ROOT / "boards" / board / name
        if src.exists():
            assert (out / name).read_text() == src.read_text()
    assert (out / "main.py").exists()
    version = (out / "version.txt").read_text()
    assert f"board={board} " in version and "fw=" in version and "git=" in version
    assert (out / "board.mpy").read_bytes()[:2] == b"M\x06", "an .mpy v6 file"
    # The header names the arch only when a module holds native code, so the
    # choice is checked at its source: the board table.
    assert table.BOARDS[board]["march"] == MCU_ARCH[table.BOARDS[board]["mcu"]]


def test_modules_are_named_by_module_not_by_the_build_path(tmp_path):
    """A board loads every .mpy into its heap, the source name with it: the
    module's name (already interned by its import), never a file path of the
    machine that built it."""
    out = build.build("rp2", tmp_path / "rp2")
    for mpy in out.glob("*.mpy"):
        data = mpy.read_bytes()
        assert str(ROOT).encode() not in data and b".py" not in data, mpy.name


def test_the_unix_tree_runs_the_boards_bytecode(tmp_path):
    """The Unix port's heap figure (make bench) is taken on the same .mpy
    bytes as the rp2 image's: one set of mpy-cross options. A module with
    viper code holds it for the machine that runs it (armv6m on the rp2)."""
    from handpiece.targets import compiled_tree

    board = build.build("rp2", tmp_path / "rp2")
    tree = compiled_tree(tmp_path / "tree")
    native = {"pacer.mpy"}  # the dwell check's walk
    for mpy in (tree / "firmware").glob("*.mpy"):
        if mpy.name not in native:
            assert mpy.read_bytes() == (board / mpy.name).read_bytes(), mpy.name


def test_stm32_boot_keeps_flash_off_usb(tmp_path):
    """The pyboard's factory USB mode (VCP+MSC) lets the PC mount /flash while
    the board writes it: the image ships a boot.py that asks for VCP only."""
    out = build.build("stm32", tmp_path / "stm32")
    assert (out / "boot.py").exists(), "boot.py is in the image, as source"
    r = subprocess.run([str(MICROPYTHON), str(ROOT / "boards" / "tests" / "stm32_boot.py")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "VCP", r.stdout + r.stderr


@pytest.mark.parametrize("board", ALL_BOARDS)
def test_typecheck_against_port_stubs(board):
    r = subprocess.run([sys.executable, str(ROOT / "boards" / "typecheck.py"), board],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout


@pytest.mark.parametrize("board", ALL_BOARDS)
def test_image_holds_every_shared_module_it_imports(board):
    """A shared module left out of the board's table row would only fail on the board, at boot."""
    image = {p.stem for p in build.sources(board)}
    shared = {p.stem for p in (ROOT / "boards" / "shared").glob("*.py")}
    for src in build.sources(board):
        for node in ast.walk(ast.parse(src.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert name not in shared or name in image, f"{src.name} imports {name}, not in the {board} image"


def _tables(board, tmp_path):
    r = micropython("hal_contract.py", board, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("board", DEVICE_BOARDS)
def test_hal_contract_and_tables_match_unix(board, tmp_path):
    unix = _tables("unix", tmp_path)
    got = _tables(board, tmp_path)
    assert got["missing"] == []
    assert got["name"] == board
    assert got["same_tables"]
    assert got["link_write"] == 1  # link.write returns how much it took (SR-11)
    assert got["limits"] == unix["limits"]
    assert got["settings"] == unix["settings"]


@pytest.mark.parametrize("board", DEVICE_BOARDS + ("unix",))
def test_boards_own_a_copy_of_the_reference_tables(board, tmp_path):
    """Each board builds its tables from boards/shared/reference.py; a board that
    changes a value changes its own copy, never the reference or another board."""
    got = _tables(board, tmp_path)
    assert got["own_tables"]
    assert sorted(got["reference_limits"]) == got["limits"]
    assert sorted(got["reference_settings"]) == got["settings"]
    for k, v in DESIGN_LIMITS.items():
        assert got["reference_limits"][k] == v, k


@pytest.mark.parametrize("board", DEVICE_BOARDS)
def test_limits_follow_design(board, tmp_path):
    got = _tables(board, tmp_path)
    lim, cfg = got["limit_values"], got["setting_values"]
    for k, v in DESIGN_LIMITS.items():
        assert lim[k] == v, k
    assert lim["session_j_max"] >= REFERENCE_SESSION_J
    assert 0 < cfg["wdt_timeout_ms"] <= WDT_MAX_MS[table.BOARDS[board]["mcu"]]
    assert cfg["wdt_timeout_ms"] > cfg["control_period_us"] // 1000
    max_pulse_mj = lim["power_w_max"] * lim["width_us_max"] // 1000
    assert max_pulse_mj * lim["rate_hz_max"] > lim["avg_power_mw_max"], "avg power limit must bind"


@pytest.mark.parametrize("script", [row["logic"] for row in table.BOARDS.values()])
def test_board_logic_in_unix_port(script, tmp_path):
    r = micropython(script, cwd=tmp_path)
    assert "PASS" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0 and "FAIL" not in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("port", list(table.PORTS))
def test_fakes_offer_only_what_the_port_defines(port):
    """Every name, class attribute and keyword of the fakes exists in the port's
    official stubs (installed by `make setup` into build/stubs)."""
    r = subprocess.run([sys.executable, str(ROOT / "boards" / "tests" / "fakecheck.py"), port],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("board", ALL_BOARDS)
def test_no_big_int_arithmetic_in_irq_paths(board):
    """32-bit ports: small ints end at 2**30; a sum above it in a hard IRQ or
    with interrupts masked allocates (boards/tests/irqlint.py)."""
    r = subprocess.run([sys.executable, str(ROOT / "boards" / "tests" / "irqlint.py"), board],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_irq_lint_sees_a_run_time_address_sum(tmp_path, monkeypatch):
    """The lint itself: a register address summed inside a handler is reported."""
    spec = importlib.util.spec_from_file_location("irqlint", ROOT / "boards" / "tests" / "irqlint.py")
    lint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lint)
    src = tmp_path / "board.py"
    src.write_text("from micropython import const\nimport machine\nBASE = const(0x4001_0400)\nOFF = const(0x44)\n"
                   "OK = const(BASE + OFF)\n\nclass I:\n    def __init__(self, p):\n        p.irq(self._h)\n\n"
                   "    def _h(self, pin):\n        machine.mem32[OK] = 0\n        self._off()\n\n"
                   "    def _off(self):\n        machine.mem32[BASE + OFF] = 0\n")
    monkeypatch.setattr(lint, "sources", lambda board: [src])
    found = lint.lint("x")
    assert len(found) == 1 and "BASE + OFF" in found[0], found


def test_board_table_lists_every_board_folder():
    """A board folder without a row would be neither built, type-checked nor tested."""
    folders = {p.parent.name for p in (ROOT / "boards").glob("*/board.py")}
    assert folders == set(table.BOARDS) | {"unix"}  # the simulated board is not built
    logic = {p.name for p in (ROOT / "boards" / "tests").glob("*_logic.py")}
    assert logic == {row["logic"] for row in table.BOARDS.values()}, "a logic test no board runs"
    for name, row in table.BOARDS.items():
        assert row["role"] in ("device", "rig") and row["port"] in table.PORTS, name
    for port, row in table.PORTS.items():
        assert row["stubs"].startswith("micropython-%s-" % port) and "-stubs==" in row["stubs"], port
        assert all((ROOT / "boards" / "fakes" / (m + ".py")).exists() for m in row["fakes"]), port


def test_simulated_board_modules_shadow_no_firmware_module():
    """boards/unix comes first on the simulated board's path: a module named
    like a firmware or shared one would replace it there, and only there."""
    unix = {p.stem for p in (ROOT / "boards" / "unix").glob("*.py")} - {"main"}
    others = {p.stem for d in ("firmware", "boards/shared") for p in (ROOT / d).glob("*.py")}
    assert not unix & others


def test_make_takes_the_board_names_from_the_table():
    r = subprocess.run(["make", "-s", "check-board", "BOARD=pdp11", "PYTHON=" + sys.executable],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "unknown BOARD 'pdp11': choose one of %s\n" % " ".join(table.BOARDS) in r.stderr, r.stderr
    for board in table.BOARDS:
        r = subprocess.run(["make", "-s", "check-board", "BOARD=" + board, "PYTHON=" + sys.executable],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr


def test_flash_to_missing_port_is_a_clear_error():
    r = subprocess.run([sys.executable, str(ROOT / "boards" / "build.py"), "--flash", "rp2", "/dev/no-such-port"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_unknown_board_refused():
    r = subprocess.run([sys.executable, str(ROOT / "boards" / "build.py"), "pdp11"], capture_output=True, text=True)
    assert r.returncode != 0 and "unknown board" in r.stderr and "Traceback" not in r.stderr


def test_typecheck_never_downloads_the_stubs(tmp_path):
    """`make setup` installs the stubs; a check without them stops with a
    clear line instead of fetching them (a copy of the tree that has none)."""
    (tmp_path / "boards").mkdir()
    for name in ("typecheck.py", "build.py", "table.py", "mypy.ini", "requirements-boards.txt"):
        (tmp_path / "boards" / name).write_text((ROOT / "boards" / name).read_text())
    r = subprocess.run([sys.executable, str(tmp_path / "boards" / "typecheck.py"), "rp2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "the rp2 stubs are not installed: run `make setup`" in r.stderr
    assert not (tmp_path / "build" / "stubs").exists()
