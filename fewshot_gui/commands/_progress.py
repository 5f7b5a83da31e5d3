"""Progress of a long command on standard error: a tqdm bar per stage on a terminal; elsewhere
(a log, a pipe, CI) plain lines every 10 % or 10 s, or nothing.

Driven by the :class:`Progress` items that the engine's generators yield; a new ``stage`` (or a
new total) starts a new bar or a new series of lines.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from fewshot_gui.core.types import Progress

LINE_EVERY_FRACTION = 0.1
LINE_EVERY_S = 10.0
LINE_GAP_S = 1.0
"""Lines: at each further 10 % (at most one a second), at least every 10 s, and the last one."""


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return (
        f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        if hours
        else f"{rest // 60:02d}:{rest % 60:02d}"
    )


def progress_line(progress: Progress, unit: str) -> str:
    """``embedding: 120/500 img (24%), 12.3 img/s, ETA 00:31``."""
    stage = progress.stage or "progress"
    counted = "" if unit == stage else f" {unit}"
    return (
        f"{stage}: {progress.done}/{progress.total}{counted} ({progress.fraction:.0%}), "
        f"{progress.items_per_s:.1f} {unit}/s, ETA {format_eta(progress.eta_s)}"
    )


class ProgressLine:
    """Shows :class:`Progress` items on ``stream`` (default standard error).

    On a terminal (or with ``force``): a tqdm bar per stage. Not on a terminal: plain lines when
    ``lines`` is set (see :data:`LINE_GAP_S`), else nothing. ``enabled`` False turns it off.
    ``unit`` names what is counted; a stage named ``episodes`` counts episodes.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        unit: str = "img",
        force: bool = False,
        lines: bool = False,
    ) -> None:
        self.stream = stream or sys.stderr
        self.bars = force or _isatty(self.stream)
        self.enabled = self.bars or lines
        self.unit = unit
        self._bar: Any = None
        self._key: tuple[str, int] | None = None
        self._next_fraction = 0.0  # lines: the next fraction that earns a line (inf: stage done)
        self._last_line = 0.0

    def update(self, progress: Progress) -> None:
        if not self.enabled:
            return
        key = (progress.stage, progress.total)
        if key != self._key:
            self.close()
            self._key = key
            self._next_fraction, self._last_line = 0.0, time.monotonic()
        if self.bars:
            self._draw_bar(progress)
        else:
            self._write_line(progress)

    def _unit(self, progress: Progress) -> str:
        return "episodes" if progress.stage == "episodes" else self.unit

    def _draw_bar(self, progress: Progress) -> None:
        if self._bar is None:
            from tqdm import tqdm

            columns, lines = _terminal_size(self.stream)
            self._bar = tqdm(
                total=progress.total,
                initial=progress.done,  # e.g. cached images: not part of the rate
                desc=progress.stage or None,
                unit=self._unit(progress),
                file=self.stream,
                dynamic_ncols=columns > 0,
                ncols=None if columns > 0 else 80,
                nrows=lines or 24,  # a terminal reporting 0 rows would hide the bar
                mininterval=0.1,
                leave=True,
            )
        elif progress.done > self._bar.n:
            self._bar.update(progress.done - self._bar.n)

    def _write_line(self, progress: Progress) -> None:
        now = time.monotonic()
        finished = self._next_fraction == float("inf")
        last = progress.done >= progress.total
        quiet_for = now - self._last_line
        step_due = progress.fraction + 1e-9 >= self._next_fraction and (
            self._next_fraction == 0.0 or quiet_for >= LINE_GAP_S
        )
        due = step_due or quiet_for >= LINE_EVERY_S
        if finished or not (due or last):
            return
        self.stream.write(progress_line(progress, self._unit(progress)) + "\n")
        self.stream.flush()
        self._last_line = now
        step = LINE_EVERY_FRACTION
        next_step = (int(progress.fraction / step + 1e-9) + 1) * step
        self._next_fraction = float("inf") if last else next_step

    def close(self) -> None:
        """End the current bar (its last state stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._key = None


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    """Columns and lines of the terminal behind ``stream``; 0 where unknown."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 0, 0
    return size.columns, size.lines


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
