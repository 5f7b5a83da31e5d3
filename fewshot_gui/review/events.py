"""Plain-Python events (the review model's signals) and the review counter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Event:
    """A list of plain callbacks: ``connect(f)``, ``disconnect(f)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Forget ``callback`` (no error when it is not connected)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


@dataclass(frozen=True)
class ReviewCounts:
    """The review counter: images labeled by the user, images in the view still labeled by the
    model only, and labels that the last action changed (besides the images it labeled)."""

    reviewed: int
    remaining: int
    changed: int
