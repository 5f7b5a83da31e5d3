"""What the user has told the app: classes (name, colour, examples) and corrections. Qt signals only.

Views edit it through undo commands (``ui/commands.py``); the composition root listens to
``supportEdited`` (incremental support-set changes for the worker) and ``classesChanged``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor

from fewshot_gui.data.project import ClassInfo, Project

PALETTE = [
    "#e6550d",
    "#3182bd",
    "#31a354",
    "#756bb1",
    "#d6616b",
    "#17becf",
    "#bcbd22",
    "#8c564b",
    "#e377c2",
    "#636363",
    "#fd8d3c",
    "#6baed6",
]
UNKNOWN_COLOR = "#9e9e9e"


class LabelState(QObject):
    """Ordered classes with example paths, plus ``corrections`` (image path → label by the user)."""

    classesChanged = Signal()  # names, colours or order
    examplesChanged = Signal(str)  # class name
    supportEdited = Signal(list)  # [(path, label or None)]: joins / leaves the support set
    correctionsChanged = Signal(list)  # paths

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.classes: list[ClassInfo] = []
        self.corrections: dict[str, str] = {}

    # ------------------------------------------------------------------ queries
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def find(self, name: str) -> ClassInfo | None:
        return next((c for c in self.classes if c.name == name), None)

    def color(self, name: str | None) -> QColor:
        info = self.find(name) if name else None
        return QColor(info.color if info else UNKNOWN_COLOR)

    def next_color(self) -> str:
        used = {c.color for c in self.classes}
        return next(
            (c for c in PALETTE if c not in used), PALETTE[len(self.classes) % len(PALETTE)]
        )

    def new_name(self) -> str:
        n = len(self.classes) + 1
        while self.find(f"class {n}"):
            n += 1
        return f"class {n}"

    def support(self) -> dict[str, list[str]]:
        return self.to_project().support()

    def label_of_example(self, path: str) -> str | None:
        return next((c.name for c in self.classes if path in c.examples), None)

    # ------------------------------------------------------------------ class edits
    def insert_class(self, info: ClassInfo, index: int | None = None) -> None:
        if self.find(info.name):
            raise ValueError(f"a class named {info.name!r} exists already")
        self.classes.insert(len(self.classes) if index is None else index, replace(info))
        self.classesChanged.emit()
        if info.examples:
            self.supportEdited.emit([(p, info.name) for p in info.examples])

    def remove_class(self, name: str) -> tuple[int, ClassInfo, dict[str, str]]:
        """Remove a class; returns (index, info, its corrections) so it can be restored."""
        index = self.names().index(name)
        info = self.classes.pop(index)
        corrections = {p: lab for p, lab in self.corrections.items() if lab == name}
        for p in corrections:
            del self.corrections[p]
        self.classesChanged.emit()
        if corrections:
            self.correctionsChanged.emit(list(corrections))
        return index, info, corrections

    def rename_class(self, old: str, new: str) -> None:
        if old == new:
            return
        if self.find(new):
            raise ValueError(f"a class named {new!r} exists already")
        info = self.find(old)
        if info is None:
            raise ValueError(f"no class named {old!r}")
        info.name = new
        changed = [p for p, lab in self.corrections.items() if lab == old]
        for p in changed:
            self.corrections[p] = new
        self.classesChanged.emit()
        if changed:
            self.correctionsChanged.emit(changed)

    def set_color(self, name: str, color: str) -> None:
        info = self.find(name)
        if info is not None:
            info.color = color
            self.classesChanged.emit()

    # ------------------------------------------------------------------ examples / corrections
    def add_examples(self, name: str, paths: Iterable[str]) -> list[str]:
        info = self.find(name)
        if info is None:
            return []
        added = [p for p in dict.fromkeys(paths) if p not in info.examples]
        for other in self.classes:  # an image is an example of one class only
            if other is not info:
                other.examples = [p for p in other.examples if p not in added]
        info.examples.extend(added)
        if added:
            self.examplesChanged.emit(name)
            self.supportEdited.emit([(p, name) for p in added])
        return added

    def remove_examples(self, name: str, paths: Iterable[str]) -> list[str]:
        info = self.find(name)
        if info is None:
            return []
        gone = [p for p in paths if p in info.examples]
        info.examples = [p for p in info.examples if p not in gone]
        if gone:
            self.examplesChanged.emit(name)
            self.supportEdited.emit([(p, self.corrections.get(p)) for p in gone])
        return gone

    def set_corrections(self, labels: dict[str, str | None]) -> dict[str, str | None]:
        """Set (label) or clear (None) user labels; returns the previous values."""
        previous = {p: self.corrections.get(p) for p in labels}
        for p, lab in labels.items():
            if lab is None:
                self.corrections.pop(p, None)
            else:
                self.corrections[p] = lab
        self.correctionsChanged.emit(list(labels))
        self.supportEdited.emit(list(labels.items()))
        return previous

    # ------------------------------------------------------------------ projects
    def to_project(self, settings: dict | None = None) -> Project:
        classes = [ClassInfo(c.name, c.color, list(c.examples)) for c in self.classes]
        return Project(classes, dict(self.corrections), dict(settings or {}))

    def load(self, project: Project) -> None:
        self.classes = [ClassInfo(c.name, c.color, list(c.examples)) for c in project.classes]
        self.corrections = dict(project.corrections)
        self.classesChanged.emit()
        self.correctionsChanged.emit(list(self.corrections))
