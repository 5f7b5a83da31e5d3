"""The CLI's progress display (evaluate, label, demo): a tqdm bar per stage on a terminal, plain
lines every 10 % (at most one a second) or 10 s elsewhere, nothing for label off a terminal."""

from __future__ import annotations

import io

import pytest

from fewshot_gui.commands import _progress
from fewshot_gui.commands._progress import ProgressLine
from fewshot_gui.core.types import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(_progress.time, "monotonic", clock)
    return clock


def _run(display: ProgressLine, clock: Clock, total: int, seconds_each: float, stage: str):
    for done in range(1, total + 1):
        clock.now += seconds_each
        display.update(Progress(done, total, stage, 2.0, (total - done) / 2.0))


def test_lines_every_tenth_when_slow_enough(clock: Clock) -> None:
    stream = io.StringIO()
    _run(ProgressLine(stream, lines=True), clock, 100, 0.5, "embedding")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # the start, then each 10 %
    assert lines[0] == "embedding: 1/100 img (1%), 2.0 img/s, ETA 00:49"
    assert [line.split()[1] for line in lines[1:]] == [f"{10 * k}/100" for k in range(1, 11)]


def test_a_fast_stage_gives_its_start_and_end_and_a_slow_one_a_line_every_10_s(clock):
    stream = io.StringIO()
    display = ProgressLine(stream, lines=True)
    _run(display, clock, 100, 0.001, "episodes")  # a tenth of a second in all
    assert stream.getvalue().splitlines() == [
        "episodes: 1/100 (1%), 2.0 episodes/s, ETA 00:49",
        "episodes: 100/100 (100%), 2.0 episodes/s, ETA 00:00",
    ]
    stream.seek(0), stream.truncate()
    _run(display, clock, 1000, 4.0, "embedding")  # 0.1 % per 4 s: the 10 s rule speaks
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:4]] == ["1/1000", "4/1000", "7/1000", "10/1000"]


def test_label_stays_silent_off_a_terminal_and_quiet_is_silent_everywhere(clock) -> None:
    stream = io.StringIO()
    _run(ProgressLine(stream), clock, 10, 1.0, "labeling")  # label's default: bars only
    quiet = ProgressLine(stream, force=True, lines=True)
    quiet.enabled = False
    _run(quiet, clock, 10, 1.0, "labeling")
    assert stream.getvalue() == ""


def test_terminal_gets_a_bar_per_stage(clock) -> None:
    stream = io.StringIO()
    display = ProgressLine(stream, force=True)
    display.update(Progress(40, 100, "embedding"))  # cached images: the bar starts there
    _run(display, clock, 100, 0.5, "embedding")
    _run(display, clock, 20, 0.5, "episodes")
    display.close()
    text = stream.getvalue()
    assert "embedding: 100%" in text and "100/100" in text
    assert "episodes: 100%" in text and "20/20" in text and "episodes/s" in text


@pytest.mark.skipif(not hasattr(__import__("os"), "openpty"), reason="needs a pseudo-terminal")
def _read_all(fd: int) -> str:
    """Everything written to a pty so far (one read may return only part of it)."""
    import os
    import select

    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_that_reports_no_size_still_gets_its_bar(clock) -> None:
    import os

    master, slave = os.openpty()  # a fresh pty reports 0 columns and 0 rows (CI, `script`)
    try:
        with os.fdopen(slave, "w", closefd=True) as stream:
            display = ProgressLine(stream)
            assert display.bars  # a terminal
            _run(display, clock, 10, 0.5, "labeling")
            display.close()
        text = _read_all(master)
    finally:
        os.close(master)
    assert "labeling: 100%" in text and "10/10" in text
