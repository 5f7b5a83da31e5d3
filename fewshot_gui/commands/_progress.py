"""A one-line progress bar on a terminal's standard error (silent when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from fewshot_gui.core.types import Progress


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


class ProgressLine:
    """Draws ``stage [#####.....] done/total rate/s ETA`` at most every 0.1 s."""

    def __init__(
        self, stream: TextIO | None = None, unit: str = "img", force: bool = False
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.unit = unit
        self._last = 0.0
        self._shown = False

    def update(self, progress: Progress) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and progress.done < progress.total):
            return
        self._last = now
        width = 30
        filled = int(width * progress.fraction)
        bar = "#" * filled + "." * (width - filled)
        line = (
            f"\r{progress.stage:>9} [{bar}] {progress.done}/{progress.total} "
            f"{progress.items_per_s:6.1f} {self.unit}/s ETA {format_eta(progress.eta_s)} "
        )
        self.stream.write(line)
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
