"""Coalescing bursts of updates for the GUI thread (e.g. partial predictions from the worker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer


class Coalescer(QObject):
    """Hands items to ``apply`` in batches, at most once per ``interval_ms``.

    The first item after a quiet spell is applied at once; items arriving within the next
    ``interval_ms`` wait and are applied together when it ends. No item is lost or reordered;
    :meth:`flush` applies the waiting ones now (before anything that depends on them).
    """

    def __init__(
        self, apply: Callable[[list[Any]], None], interval_ms: int, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._apply = apply
        self._pending: list[Any] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def push(self, item: Any) -> None:
        self._pending.append(item)
        if not self._timer.isActive():
            self.flush()

    def flush(self) -> None:
        """Apply the waiting items now and start a new quiet interval."""
        if not self._pending:
            return
        items, self._pending = self._pending, []
        self._timer.start()
        self._apply(items)

    def discard(self) -> None:
        self._pending = []

    def stop(self) -> None:
        self._timer.stop()
        self._pending = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _tick(self) -> None:
        self.flush()
