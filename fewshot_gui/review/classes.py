"""The review model's classes, examples and user labels ("corrections")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fewshot_gui.data.project import ClassInfo, Project
from fewshot_gui.review.constants import PALETTE, UNKNOWN_COLOR


class ClassesMixin:
    """Classes (name, colour, examples) and user labels; part of :class:`ReviewModel`."""

    classes: list[ClassInfo]
    corrections: dict[str, str]
    _example_of: dict[str, str]
    paths: list[str]
    index_of: dict[str, int]
    frozen: bool
    classes_changed: Any
    examples_changed: Any
    support_edited: Any
    labels_changed: Any
    review_changed: Any

    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def find(self, name: str) -> ClassInfo | None:
        return next((c for c in self.classes if c.name == name), None)

    def color_of(self, name: str | None) -> str:
        info = self.find(name) if name else None
        return info.color if info else UNKNOWN_COLOR

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

    def review_labels(self) -> list[str]:
        """Paths of :meth:`support` that are user labels given while reviewing (a correction or
        an accepted label), not examples: the labeler weighs them less (boundary cases)."""
        return [p for p, lab in self.corrections.items() if self._example_of.get(p) != lab]

    def is_review_label(self, path: str, label: str | None) -> bool:
        """Whether ``label`` of ``path`` joins the support set as a review label."""
        return (
            label is not None
            and self.corrections.get(path) == label
            and (self._example_of.get(path) != label)
        )

    def label_of_example(self, path: str) -> str | None:
        return self._example_of.get(path)

    def _examples_edited(self) -> None:
        self._example_of = {p: c.name for c in self.classes for p in c.examples}

    def insert_class(self, info: ClassInfo, index: int | None = None) -> None:
        if self.find(info.name):
            raise ValueError(f"a class named {info.name!r} exists already")
        self.classes.insert(len(self.classes) if index is None else index, replace(info))
        self._examples_edited()
        self.classes_changed.emit()
        if info.examples:
            self.support_edited.emit([(p, info.name) for p in info.examples])
        self._repaint_paths(info.examples)

    def remove_class(self, name: str) -> tuple[int, ClassInfo, dict[str, str]]:
        """Remove a class; returns (index, info, its corrections) so it can be restored."""
        index = self.names().index(name)
        info = self.classes.pop(index)
        corrections = {p: lab for p, lab in self.corrections.items() if lab == name}
        for p in corrections:
            del self.corrections[p]
        self._examples_edited()
        self.classes_changed.emit()
        if corrections:
            self.labels_changed.emit(list(corrections))
        self._repaint_paths([*corrections, *info.examples])
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
        self._examples_edited()
        self.classes_changed.emit()
        if changed:
            self.labels_changed.emit(changed)

    def set_color(self, name: str, color: str) -> None:
        info = self.find(name)
        if info is not None:
            info.color = color
            self.classes_changed.emit()

    # ------------------------------------------------------------------ examples and user labels
    def add_examples(self, name: str, paths: Iterable[str]) -> list[str]:
        info = self.find(name)
        if info is None:
            return []
        added = [p for p in dict.fromkeys(paths) if p not in info.examples]
        self._begin_action(added)
        for other in self.classes:  # an image is an example of one class only
            if other is not info:
                other.examples = [p for p in other.examples if p not in added]
        info.examples.extend(added)
        if added:
            self._examples_edited()
            self.examples_changed.emit(name)
            self.support_edited.emit([(p, name) for p in added])
            self._repaint_paths(added)
        return added

    def remove_examples(self, name: str, paths: Iterable[str]) -> list[str]:
        info = self.find(name)
        if info is None:
            return []
        gone = [p for p in paths if p in info.examples]
        self._begin_action(gone)
        info.examples = [p for p in info.examples if p not in gone]
        if gone:
            self._examples_edited()
            self.examples_changed.emit(name)
            self.support_edited.emit([(p, self.corrections.get(p)) for p in gone])
            self._repaint_paths(gone)
        return gone

    def set_corrections(self, labels: dict[str, str | None]) -> dict[str, str | None]:
        """Set (label) or clear (None) user labels; returns the previous values.

        This is a review action: a sorted or filtered view freezes its order, and the labels the
        re-label that follows changes are recorded as :attr:`last_changed`.
        """
        previous = {p: self.corrections.get(p) for p in labels}
        self._begin_action(labels)
        for p, lab in labels.items():
            if lab is None:
                self.corrections.pop(p, None)
            else:
                self.corrections[p] = lab
        if not self.natural():
            self.frozen = True
        self.labels_changed.emit(list(labels))
        self.support_edited.emit(list(labels.items()))
        self._repaint_paths(labels)
        if not self.natural():
            self._mark_stale()
        self.review_changed.emit()
        return previous

    def user_label(self, path: str) -> str | None:
        """The label the user gave (a correction, else the class it is an example of)."""
        label = self.corrections.get(path)
        return label if label is not None else self._example_of.get(path)

    def user_mask(self) -> np.ndarray:
        """``(N,)`` bool: images with a label from the user."""
        mask = np.zeros(len(self.paths), bool)
        for path in (*self._example_of, *self.corrections):
            i = self.index_of.get(path)
            if i is not None:
                mask[i] = True
        return mask

    # ------------------------------------------------------------------ projects
    def to_project(self, settings: dict | None = None) -> Project:
        classes = [ClassInfo(c.name, c.color, list(c.examples)) for c in self.classes]
        return Project(classes, dict(self.corrections), dict(settings or {}))

    def load(self, project: Project) -> None:
        self.classes = [ClassInfo(c.name, c.color, list(c.examples)) for c in project.classes]
        self.corrections = dict(project.corrections)
        self._examples_edited()
        self.classes_changed.emit()
        self.labels_changed.emit(list(self.corrections))
        self._repaint_paths(self.corrections)

    if TYPE_CHECKING:  # the other parts of ReviewModel

        def _begin_action(self, paths: Iterable[str]) -> None: ...
        def _repaint_paths(self, paths: Iterable[str]) -> None: ...
        def natural(self) -> bool: ...
        def _mark_stale(self) -> None: ...
