"""The documents a client writer relies on agree with the firmware."""
import ast
import re
from pathlib import Path

from handpiece.frames import checksum

ROOT = Path(__file__).resolve().parents[2]


def firmware_codes(prefix: str, table: str) -> dict[int, str]:
    src = (ROOT / "firmware/codes.py").read_text()
    numbers = {int(n) for n in re.findall(rf"^{prefix}_\w+ = const\((\d+)\)", src, re.M)}
    texts = re.findall(r'"([^"]*)"', re.search(rf"{table} = \((.*?)\n\)", src, re.S).group(1))
    return {n: texts[n] for n in numbers}


def test_codes_page_lists_every_code_with_its_text():
    page = (ROOT / "docs/codes.md").read_text()
    for prefix, table in (("E", "ERRORS"), ("F", "FAULTS")):
        codes = firmware_codes(prefix, table)
        rows = {int(n): t for n, t in re.findall(rf"^\| {prefix}(\d\d) \| ([^|]+?) \|", page, re.M)}
        assert rows == codes


def test_protocol_example_lines_carry_valid_checksums():
    page = (ROOT / "docs/protocol.md").read_text()
    lines = re.findall(r"^[<>] (.*)\*([0-9A-F]{2})$", page, re.M)
    assert len(lines) >= 10
    for body, cs in lines:
        assert f"{checksum(body.encode()):02X}" == cs, body


def test_firmware_imports_no_port_module():
    """firmware/ is board-agnostic: hardware comes in through the HAL only."""
    bad = re.compile(r"^\s*(import|from)\s+(rp2|pyb|esp32|esp|machine|stm)\b", re.M)
    for path in (ROOT / "firmware").rglob("*.py"):
        assert not bad.search(path.read_text()), path


def test_the_documented_pty_recipe_runs_the_firmware(tmp_path):
    """The recipe in docs/protocol.md, run as written, gives a firmware that
    answers a client with nothing but the pty's slave."""
    import os
    import select
    import signal

    from handpiece.targets import find_micropython

    page = (ROOT / "docs/protocol.md").read_text()
    recipe = re.search(r"## Running the firmware in the Unix port.*?```python\n(.*?)```", page, re.S).group(1)
    recipe = recipe.replace('"micropython"', repr(find_micropython()))
    recipe = recipe.replace('HP_STORE="/tmp/"', f"HP_STORE={str(tmp_path) + '/'!r}")
    assert str(tmp_path) in recipe and find_micropython() in recipe
    cwd = os.getcwd()
    ns: dict = {}
    os.chdir(ROOT)
    try:
        exec(recipe, ns)  # noqa: S102 - the documented recipe itself is under test
    finally:
        os.chdir(cwd)
    fd = os.open(ns["port"], os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, b"N0 HELLO 1*0D\n")
        got = b""
        while b"ok 0 HILT" not in got:
            ready, _, _ = select.select([fd], [], [], 10)
            assert ready, f"no reply; so far: {got!r}"
            got += os.read(fd, 4096)
        assert b" boot fw=" in got
    finally:
        os.close(fd)
        os.close(ns["slave"])
        ns["proc"].send_signal(signal.SIGKILL)
        ns["proc"].wait(timeout=5)


def test_fault_gravity_order_in_the_docs_is_the_firmware_order():
    src = (ROOT / "firmware/codes.py").read_text()
    gravity = [int(n) for n in re.search(r"^GRAVITY = \(([\d, ]+)\)", src, re.M).group(1).split(",")]
    want = [f"F{code:02d}" for code in sorted(range(1, len(gravity)), key=lambda c: -gravity[c])]
    for page in ("docs/codes.md", "docs/states.md"):
        text = " ".join((ROOT / page).read_text().split())
        order = re.search(r"gravest first: ((?:F\d\d, )+F\d\d)", text)
        assert order and order.group(1).split(", ") == want, page


def report_formats() -> dict:
    """EVENTS, STATUS and REPLIES from firmware/report.py: the wire format."""
    tree = ast.parse((ROOT / "firmware/report.py").read_text())
    return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name) and t.id in ("EVENTS", "STATUS", "REPLIES")}


def keys(fmt: str) -> list[str]:
    """The key names of a `key=%d key=%s` payload format."""
    return re.findall(r"(?:^| )([a-z_]+)=%", fmt)


def test_protocol_page_lists_every_event_with_the_fields_report_py_sends():
    events = report_formats()["EVENTS"]
    page = (ROOT / "docs/protocol.md").read_text()
    table = re.search(r"^Events:\n\n(.*?)\n\n", page, re.S | re.M).group(1)
    documented = {}
    for names, fields in re.findall(r"^\| ((?:`[\w-]+`(?: / )?)+) \| ([^|]*) \|", table, re.M):
        first = re.match(r"`([^`]*)`", fields.strip())
        for name in re.findall(r"`([\w-]+)`", names):
            documented[name] = first.group(1).split() if first else []
    assert sorted(documented) == sorted(events)
    for name, fmt in events.items():
        if keys(fmt):
            assert documented[name] == keys(fmt), name


def test_protocol_page_lists_the_status_fields_in_report_py_order():
    page = (ROOT / "docs/protocol.md").read_text()
    para = re.search(r"^Status fields: (.*?)\n\n", page, re.S | re.M).group(1)
    assert re.findall(r"`(\w+)`", para) == keys(report_formats()["STATUS"])


def test_protocol_page_names_every_field_of_each_command_reply():
    page = (ROOT / "docs/protocol.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)[^`]*` \| (?:yes|no) \| (.*) \|$", page, re.M))
    for cmd, fmt in report_formats()["REPLIES"].items():
        for key in keys(fmt):
            assert re.search(rf"\b{key}\b", rows[cmd]), f"{cmd}: {key} not in docs/protocol.md"


def test_every_copy_of_the_input_names_is_the_firmware_table():
    """boards/rig_pico runs without the firmware core and the host package
    without the firmware, so each keeps a copy of firmware/interlocks.py's
    names: in the same order (row i is bit i)."""
    from handpiece.rig import INPUTS

    src = (ROOT / "firmware/interlocks.py").read_text()
    table = re.search(r"^INPUTS = \((.*?)\n\)", src, re.S | re.M).group(1)
    names = tuple(re.findall(r'^\s+\("(\w+)",', table, re.M))
    assert len(names) == 7
    assert INPUTS == names
    pico = (ROOT / "boards/rig_pico/board.py").read_text()
    assert ast.literal_eval(re.search(r"^_NAMES = (\(.*\))$", pico, re.M).group(1)) == names
