"""The classes and user labels as Qt signals: a thin view of :class:`~fewshot_gui.review.ReviewModel`.

Views edit it through undo commands (``ui/commands.py``); the composition root listens to
``supportEdited`` (incremental support-set changes for the worker) and ``classesChanged``. Every
query and edit is the review model's; this class only relays its events as signals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor

from fewshot_gui.data.project import ClassInfo, Project
from fewshot_gui.review import PALETTE, UNKNOWN_COLOR, Event, ReviewModel

__all__ = ["PALETTE", "UNKNOWN_COLOR", "LabelState", "subscribe"]


def subscribe(event: Event, owner: QObject, callback: Callable[..., Any]) -> None:
    """Connect a Qt object's ``callback`` to a review-model event for as long as ``owner``
    lives (the plain Python event would otherwise call into a deleted widget)."""
    event.connect(callback)

    owner.destroyed.connect(lambda *_args: event.disconnect(callback))


class LabelState(QObject):
    """Ordered classes with example paths, plus ``corrections`` (image path → label by the user)."""

    classesChanged = Signal()  # names, colours or order
    examplesChanged = Signal(str)  # class name
    supportEdited = Signal(list)  # [(path, label or None)]: joins / leaves the support set
    correctionsChanged = Signal(list)  # paths

    def __init__(self, parent: QObject | None = None, review: ReviewModel | None = None) -> None:
        super().__init__(parent)
        self.review = review if review is not None else ReviewModel()
        r = self.review
        subscribe(r.classes_changed, self, self.classesChanged.emit)
        subscribe(r.examples_changed, self, self.examplesChanged.emit)
        subscribe(r.support_edited, self, self.supportEdited.emit)
        subscribe(r.labels_changed, self, self.correctionsChanged.emit)

    @property
    def classes(self) -> list[ClassInfo]:
        return self.review.classes

    @property
    def corrections(self) -> dict[str, str]:
        return self.review.corrections

    def color(self, name: str | None) -> QColor:
        return QColor(self.review.color_of(name))

    # ------------------------------------------------------------------ the review model's
    def names(self) -> list[str]:
        return self.review.names()

    def find(self, name: str) -> ClassInfo | None:
        return self.review.find(name)

    def next_color(self) -> str:
        return self.review.next_color()

    def new_name(self) -> str:
        return self.review.new_name()

    def support(self) -> dict[str, list[str]]:
        return self.review.support()

    def review_labels(self) -> list[str]:
        return self.review.review_labels()

    def label_of_example(self, path: str) -> str | None:
        return self.review.label_of_example(path)

    def insert_class(self, info: ClassInfo, index: int | None = None) -> None:
        self.review.insert_class(info, index)

    def remove_class(self, name: str) -> tuple[int, ClassInfo, dict[str, str]]:
        return self.review.remove_class(name)

    def rename_class(self, old: str, new: str) -> None:
        self.review.rename_class(old, new)

    def set_color(self, name: str, color: str) -> None:
        self.review.set_color(name, color)

    def add_examples(self, name: str, paths: Iterable[str]) -> list[str]:
        return self.review.add_examples(name, paths)

    def remove_examples(self, name: str, paths: Iterable[str]) -> list[str]:
        return self.review.remove_examples(name, paths)

    def set_corrections(self, labels: dict[str, str | None]) -> dict[str, str | None]:
        return self.review.set_corrections(labels)

    def to_project(self, settings: dict | None = None) -> Project:
        return self.review.to_project(settings)

    def load(self, project: Project) -> None:
        self.review.load(project)
