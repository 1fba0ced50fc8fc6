"""Golden transcripts: files of sent lines and the exact lines the device must
answer, replayed over the serial line (SR-12)."""
from pathlib import Path

import pytest

from handpiece.device import ProtocolError

HERE = Path(__file__).parent / "transcripts"


def load(path: Path) -> list[tuple[str, str]]:
    steps = []
    for line in path.read_text().splitlines():
        if line.startswith(("> ", "< ")):
            steps.append((line[0], line[2:]))
    return steps


def received(device) -> list[str]:
    return [data.decode() for _, d, data in device.t.log if d == "<"]


@pytest.mark.safety("SR-12")
@pytest.mark.parametrize("path", sorted(HERE.glob("*.txt")), ids=lambda p: p.stem)
def test_transcript(device, path):
    steps = load(path)
    expected = [text for d, text in steps if d == "<"]
    want = 0
    for d, text in steps:
        if d == "<":
            want += 1
            continue
        _wait_for(device, want)
        device.t.write(text.encode() + b"\n")
    _wait_for(device, want)
    assert received(device) == expected


def _wait_for(device, n: int) -> None:
    try:
        device.wait(lambda: len(received(device)) >= n, timeout=5, what=f"{n} lines")
    except ProtocolError:
        pass  # the comparison below shows what was missing
