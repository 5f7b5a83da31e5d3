"""The review model: what the user reviews, as plain Python and numpy (no Qt, no torch).

It holds the classes (name, colour, examples), the user's labels ("corrections"), the model's
prediction and confidence for every image of the labeled folder, the grid's filter and sort order,
the selection, the embedding plot's point ↔ image map, what the last action changed, and the rows
for export. Views subscribe to its :class:`Event` s: ``ui/state.py`` relays the class events as Qt
signals, ``ui/grid_model.py`` turns order events into row insertions and resets, the app recolours
the plot from :meth:`ReviewModel.point_colors`.

Review never loses its place: once the user labels an image in a sorted or filtered view, that
view's order is *frozen* (images keep their rows; new images are appended) until the user asks
for a re-sort (:meth:`ReviewModel.resort`) or changes the view (:meth:`ReviewModel.set_view`).

Image indices ("base" indices) are positions in :attr:`ReviewModel.paths`; "rows" are positions in
the view's :attr:`ReviewModel.order`; "points" are positions in :attr:`ReviewModel.point_paths`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fewshot_gui.core.types import LIKELY_UNKNOWN, UNKNOWN, FileFailure, Predictions
from fewshot_gui.data.export import LabelRow
from fewshot_gui.data.project import ClassInfo, Project

PENDING = -1
"""Label code of an image that has no prediction yet."""
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
FILTERS = {
    "all": "all images",
    "pending": "not yet labeled",
    "unknown": "unknown",
    "likely_unknown": "likely unknown (far from every class)",
    "corrected": "labeled by you",
    "changed": "changed by the last action",
    "selection": "selected in the plot",
    "failed": "failed files",
}
"""Filter kinds (besides ``"class"``) and what the user reads for them."""
SORTS = {
    "folder order": "order",
    "least confident first": "confidence",
    "most unknown first": "unknown",
    "file name": "name",
}


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


class ReviewModel:
    """Classes, user labels, predictions, view order, selection and plot map, with events."""

    def __init__(self) -> None:
        self.classes_changed = Event()  # (): names, colours or order
        self.examples_changed = Event()  # (class name)
        self.support_edited = Event()  # ([(path, label or None)]): joins / leaves the support set
        self.labels_changed = Event()  # (paths): user labels set or cleared
        self.order_about_to_change = Event()  # (first, last) rows appended, or (-1, -1): reset
        self.order_changed = Event()  # (first, last), as above, once done
        self.rows_changed = Event()  # (base indices): what they show changed
        self.order_stale = Event()  # (): the order no longer follows the sort; resort() applies
        self.selection_changed = Event()  # (base indices, source)
        self.review_changed = Event()  # (): counters or the last change
        self.points_changed = Event()  # (): the plot's points map to other images
        self.classes: list[ClassInfo] = []
        self.corrections: dict[str, str] = {}
        self._example_of: dict[str, str] = {}
        self._reset_images()
        self.filter_kind, self.filter_class, self.sort = "all", "", "order"
        self.frozen = False
        self.stale = False
        self.selection = np.zeros(0, np.int64)
        self.view_selection = np.zeros(0, np.int64)
        self.point_paths: list[str] = []
        self.point_base = np.zeros(0, np.int64)
        self._points_found = False

    def _reset_images(self) -> None:
        self.paths: list[str] = []
        self.index_of: dict[str, int] = {}
        self.code_names: list[str] = []  # label code → name
        self._code: dict[str, int] = {}
        self.codes = np.zeros(0, np.int32)
        self.conf = np.zeros(0, np.float32)
        self.unknown = np.zeros(0, np.float32)  # unknown score (NaN while pending / not computed)
        self.failed: dict[int, str] = {}
        self.order = np.zeros(0, np.int64)
        self.pos = np.zeros(0, np.int64)
        self.last_changed = np.zeros(0, np.int64)
        self._was = np.zeros(0, np.int32)  # what each image showed before the last action
        self.finished_actions = 0  # actions whose changes are known
        self._before: np.ndarray | None = None  # display codes when the pending action began
        self._acted: set[str] = set()  # paths the pending action labeled
        self._awaiting = 0  # re-labels the pending action still waits for

    # ------------------------------------------------------------------ classes
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

    def _begin_action(self, paths: Iterable[str]) -> None:
        """Remember what every image shows, to tell what this action (and its re-label) changed."""
        if self._before is None:
            self._before = self.display_codes()
            self._acted = set()
        self._acted.update(paths)

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

    # ------------------------------------------------------------------ images and predictions
    def _code_of(self, name: str) -> int:
        code = self._code.get(name)
        if code is None:
            code = self._code[name] = len(self.code_names)
            self.code_names.append(name)
        return code

    def predicted(self, i: int) -> str | None:
        code = int(self.codes[i])
        return None if code == PENDING else self.code_names[code]

    def label(self, i: int) -> str | None:
        """User label if any, else the predicted one (None while pending)."""
        user = self.user_label(self.paths[i])
        return user if user is not None else self.predicted(i)

    def display_codes(self) -> np.ndarray:
        """``(N,)`` int32: the code of the label each image shows (user label first)."""
        codes = self.codes.copy()
        for path, label in (*self._example_of.items(), *self.corrections.items()):
            i = self.index_of.get(path)
            if i is not None:
                codes[i] = self._code_of(label)
        return codes

    def _grow(self, paths: Sequence[str]) -> np.ndarray:
        """Base indices of ``paths``, appending unknown ones (pending)."""
        new = [p for p in dict.fromkeys(paths) if p not in self.index_of]
        start = len(self.paths)
        if new:
            self.index_of.update(zip(new, range(start, start + len(new)), strict=True))
            self.paths.extend(new)
            self.codes = np.concatenate([self.codes, np.full(len(new), PENDING, np.int32)])
            self.conf = np.concatenate([self.conf, np.zeros(len(new), np.float32)])
            self.unknown = np.concatenate([self.unknown, np.full(len(new), np.nan, np.float32)])
            self._map_points()  # reported by _after_change
        if len(new) == len(paths):  # all new and distinct (a first fill): their rows in order
            return np.arange(start, start + len(paths), dtype=np.int64)
        return np.fromiter((self.index_of[p] for p in paths), np.int64, len(paths))

    def update_predictions(self, predictions: Predictions) -> None:
        """Merge predictions (a batch, or all images after a correction); cheap for 100,000."""
        paths = predictions.paths
        if not len(paths):
            return
        before = len(self.paths)
        same = paths == self.paths  # a full re-label in the same order (after a correction)
        rows = np.arange(len(paths), dtype=np.int64) if same else self._grow(list(paths))
        classes = list(predictions.classes)
        lookup = np.array([self._code_of(n) for n in [*classes, UNKNOWN]], np.int32)
        probs = np.asarray(predictions.probabilities)
        if probs.ndim == 2 and probs.shape[1] == len(classes) and len(classes):
            col = probs.argmax(axis=1)
            labels = predictions.labels
            if labels.count(UNKNOWN):  # C-speed check; the slow path only when needed
                unknown = np.fromiter((lab == UNKNOWN for lab in labels), bool, len(labels))
                col[unknown] = len(classes)
        else:
            name_to_col = {n: k for k, n in enumerate([*classes, UNKNOWN])}
            col = np.array([name_to_col[lab] for lab in predictions.labels], np.int64)
        self.codes[rows] = lookup[col]
        self.conf[rows] = np.asarray(predictions.confidences, np.float32)
        scores = getattr(predictions, "unknown_scores", ())
        if len(scores) == len(rows):
            self.unknown[rows] = scores
        if self.failed:
            for r in set(self.failed).intersection(rows.tolist()):
                del self.failed[r]
        full = len(self.paths) == before and len(rows) >= before - len(self.failed)
        if full and self._before is not None:
            self._awaiting = max(0, self._awaiting - 1)
            if not self._awaiting:
                self.finish_action()
        self._after_change(before, rows)

    def add_failures(self, failures: Sequence[FileFailure]) -> None:
        """Mark files that failed so the "failed" filter lists them."""
        before = len(self.paths)
        rows = self._grow([f.path for f in failures])
        for r, f in zip(rows, failures, strict=True):
            self.failed[int(r)] = f.reason
        self._after_change(before, rows)

    def clear(self) -> None:
        """Forget every image (another folder is labeled); classes and user labels stay."""
        self.order_about_to_change.emit(-1, -1)
        self._reset_images()
        self.selection = np.zeros(0, np.int64)
        self.view_selection = np.zeros(0, np.int64)
        self.frozen = self.stale = False
        self.point_paths, self.point_base = [], np.zeros(0, np.int64)  # re-embedded later
        self.order_changed.emit(-1, -1)
        self.review_changed.emit()
        self.points_changed.emit()

    # ------------------------------------------------------------------ what an action changed
    def expect_relabel(self) -> None:
        """The pending action was sent to the session: wait for its re-label before comparing."""
        if self._before is not None:
            self._awaiting += 1

    def finish_action(self) -> None:
        """Compare what images show now with before the pending action: :attr:`last_changed`."""
        before, self._before = self._before, None
        if before is None:
            return
        after = self.display_codes()
        n = min(len(before), len(after))
        changed = np.flatnonzero((before[:n] != after[:n]) & (before[:n] != PENDING))
        acted = {self.index_of[p] for p in self._acted if p in self.index_of}
        if acted:
            mine = np.zeros(len(after), bool)
            mine[list(acted)] = True
            changed = changed[~mine[changed]]
        previous, self.last_changed = self.last_changed, changed.astype(np.int64)
        self._was = before
        self._acted, self._awaiting = set(), 0
        self.finished_actions += 1
        self.rows_changed.emit(np.concatenate([previous, self.last_changed]))  # badges move
        self.review_changed.emit()

    def forget_action(self) -> None:
        """A new labeling run starts: no pending action waits for a re-label any more."""
        self._before, self._acted, self._awaiting = None, set(), 0

    def was_label(self, i: int) -> str:
        """The label image ``i`` showed before the last action changed it ("" if it did not)."""
        k = int(np.searchsorted(self.last_changed, i))  # last_changed is sorted
        if i >= len(self._was) or k >= len(self.last_changed) or self.last_changed[k] != i:
            return ""
        code = int(self._was[i])
        return "" if code == PENDING else self.code_names[code]

    def changed_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.paths), bool)
        mask[self.last_changed[self.last_changed < len(mask)]] = True
        return mask

    def counts(self) -> ReviewCounts:
        """Reviewed (user-labeled images), remaining in the view, changed by the last action."""
        user = self.user_mask()
        todo = ~user & (self.codes != PENDING)
        if self.failed:
            todo[list(self.failed)] = False
        return ReviewCounts(int(user.sum()), int(todo[self.order].sum()), len(self.last_changed))

    # ------------------------------------------------------------------ the view: filter, sort
    def natural(self) -> bool:
        """All images in folder order: rows are base indices, nothing to freeze."""
        return self.filter_kind == "all" and self.sort == "order"

    def keep_mask(self) -> np.ndarray:
        """``(N,)`` bool: images the current filter shows."""
        n, kind = len(self.paths), self.filter_kind
        if kind in ("class", "unknown"):
            code = self._code.get(UNKNOWN if kind == "unknown" else self.filter_class, -99)
            return self.display_codes() == code
        if kind == "corrected":
            return self.user_mask()
        if kind == "likely_unknown":
            return self.likely_unknown_mask()
        if kind == "pending":
            keep = self.codes == PENDING
        elif kind == "changed":
            return self.changed_mask()
        elif kind == "selection":
            keep = np.zeros(n, bool)
            keep[self.view_selection[self.view_selection < n]] = True
            return keep
        elif kind == "failed":
            keep = np.zeros(n, bool)
        else:
            keep = np.ones(n, bool)
        if self.failed:
            keep[list(self.failed)] = kind == "failed" or kind == "all"
        return keep

    def sorted_indices(self, idx: np.ndarray) -> np.ndarray:
        """Base indices ``idx`` in the current sort."""
        if self.sort == "confidence" and len(idx):
            done = self.user_mask()[idx] | (self.codes[idx] == PENDING)
            idx = idx[np.argsort(np.where(done, 2.0, self.conf[idx]), kind="stable")]
        elif self.sort == "unknown" and len(idx):
            done = self.user_mask()[idx] | (self.codes[idx] == PENDING)
            idx = idx[np.argsort(np.where(done, 2.0, -self.unknown[idx]), kind="stable")]
        elif self.sort == "name" and len(idx):
            names = np.array([os.path.basename(self.paths[i]).lower() for i in idx], dtype=object)
            idx = idx[np.argsort(names, kind="stable")]
        return idx.astype(np.int64)

    def likely_unknown_mask(self) -> np.ndarray:
        """``(N,)`` bool: images labeled by the model only whose unknown score is above
        :data:`~fewshot_gui.core.types.LIKELY_UNKNOWN` (clutter: far from every class)."""
        keep = (self.unknown > LIKELY_UNKNOWN) & (self.codes != PENDING) & ~self.user_mask()
        if self.failed:
            keep[list(self.failed)] = False
        return keep

    def compute_order(self) -> np.ndarray:
        return self.sorted_indices(np.flatnonzero(self.keep_mask()))

    def _set_order(self, order: np.ndarray) -> None:
        self.order = order
        self.pos = np.full(len(self.paths), -1, np.int64)
        self.pos[order] = np.arange(len(order))

    def resort(self) -> None:
        """Apply the filter and sort now (the view resets); the order is no longer frozen."""
        self.order_about_to_change.emit(-1, -1)
        self._set_order(self.compute_order())
        self.frozen = self.stale = False
        self.order_changed.emit(-1, -1)
        self.review_changed.emit()

    def set_view(self, kind: str, class_name: str = "", sort: str | None = None) -> None:
        """Leave the current view for another filter (and sort): always re-sorted."""
        self.filter_kind, self.filter_class = kind, class_name
        if sort is not None:
            self.sort = sort
        self.resort()

    def freeze(self) -> None:
        """Keep the current order while the user reviews (e.g. one at a time)."""
        if not self.natural():
            self.frozen = True

    def show_selection_only(self) -> None:
        """Filter the view to the current selection (as it is now: later clicks do not shrink
        it)."""
        self.view_selection = self.selection.copy()
        self.set_view("selection")

    def row_of(self, base: int) -> int:
        return int(self.pos[base]) if 0 <= base < len(self.pos) else -1

    def next_unreviewed(self, row: int) -> int:
        """The first row after ``row`` (wrapping) whose image only has the model's label; -1
        when none is left."""
        todo = ~self.user_mask() & (self.codes != PENDING)
        if self.failed:
            todo[list(self.failed)] = False
        rows = np.flatnonzero(todo[self.order])
        if not len(rows):
            return -1
        later = rows[rows > row]
        return int(later[0] if len(later) else rows[0])

    def _mark_stale(self) -> None:
        self.stale = True
        self.order_stale.emit()

    def _after_change(self, before: int, changed: np.ndarray) -> None:
        n = len(self.paths)
        if self.natural():
            if len(self.order) != before:  # not the natural order yet: reset once
                self.resort()
            elif n > before:
                self.order_about_to_change.emit(before, n - 1)
                self._set_order(np.arange(n, dtype=np.int64))
                self.order_changed.emit(before, n - 1)
        elif self.frozen:
            new = np.arange(before, n, dtype=np.int64)
            new = self.sorted_indices(new[self.keep_mask()[before:]])
            if len(new):  # the user reviews: new images join at the end
                first = len(self.order)
                self.order_about_to_change.emit(first, first + len(new) - 1)
                self._set_order(np.concatenate([self.order, new]))
                self.order_changed.emit(first, first + len(new) - 1)
            self._mark_stale()
        else:
            if len(self.pos) != n:
                self.pos = np.concatenate([self.pos, np.full(n - len(self.pos), -1, np.int64)])
            self._mark_stale()
        old = changed[changed < before]
        if len(old):
            self.rows_changed.emit(old)
        if self._points_found:
            self._points_found = False
            self.points_changed.emit()
        self.review_changed.emit()

    def _repaint_paths(self, paths: Iterable[str]) -> None:
        base = [i for p in paths if (i := self.index_of.get(p)) is not None]
        if base:
            self.rows_changed.emit(np.asarray(base, np.int64))

    # ------------------------------------------------------------------ selection and plot
    def select(self, base: Sequence[int] | np.ndarray, source: str = "") -> None:
        """Select images by base index; ``source`` ("grid", "plot", …) lets views skip echoes."""
        self.selection = np.unique(np.asarray(base, np.int64))
        self.selection_changed.emit(self.selection, source)

    def select_points(self, points: Sequence[int] | np.ndarray, source: str = "plot") -> None:
        """Select the images of plot points."""
        self.select(self.base_of_points(points), source)

    def set_points(self, paths: Sequence[str]) -> None:
        """The plot shows these images (embedded so far), point ``k`` being ``paths[k]``."""
        paths = list(paths)
        m = len(self.point_paths)
        if m <= len(paths) and paths[:m] == self.point_paths:  # grew: keep the known points
            self.point_base = np.concatenate(
                [self.point_base, np.full(len(paths) - m, -1, np.int64)]
            )
        else:
            self.point_base = np.zeros(0, np.int64)
        self.point_paths = paths
        self._map_points()
        self.points_changed.emit()

    def _map_points(self) -> bool:
        """Point → base index; only points without an image are looked up again. True when a
        point found its image (embedded before its prediction arrived)."""
        if len(self.point_base) != len(self.point_paths) or not self.paths:
            self.point_base = np.full(len(self.point_paths), -1, np.int64)
        missing = np.flatnonzero(self.point_base < 0)
        if not len(missing) or not self.paths:
            return False
        index_of, paths = self.index_of, self.point_paths
        base = np.fromiter(
            (index_of.get(paths[k], -1) for k in missing.tolist()), np.int64, len(missing)
        )
        self.point_base[missing] = base
        found = bool((base >= 0).any())
        self._points_found = self._points_found or found
        return found

    def base_of_points(self, points: Sequence[int] | np.ndarray) -> np.ndarray:
        """Base indices of plot points (points without an image dropped)."""
        base = self.point_base[np.asarray(points, np.int64)]
        return base[base >= 0]

    def points_of_base(self, base: Sequence[int] | np.ndarray) -> np.ndarray:
        """Plot points of base indices (images without a point dropped)."""
        chosen = np.zeros(len(self.paths) + 1, bool)
        chosen[np.asarray(base, np.int64)] = True
        return np.flatnonzero(chosen[self.point_base])  # point_base -1 reads the False pad

    def point_colors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(class index (P,) into :meth:`names`, -1 unlabeled; user-labeled (P,) bool)``."""
        names = self.names()
        code_to_class = np.array(
            [names.index(n) if n in names else -1 for n in self.code_names] + [-1], np.int64
        )
        base = self.point_base
        valid = (base >= 0) & (base < len(self.codes))
        codes = np.full(len(base), -1, np.int64)
        codes[valid] = self.display_codes()[base[valid]]
        star = np.zeros(len(base), bool)
        star[valid] = self.user_mask()[base[valid]]
        return code_to_class[codes], star

    def describe(self, i: int) -> str:
        """One image's label in words: "cat (your label)", "cat · 87 %", "not labeled yet"."""
        label, path = self.label(i), self.paths[i]
        if i in self.failed:
            return f"failed: {self.failed[i]}"
        if label is None:
            return "not labeled yet"
        if self.user_label(path) is not None:
            return f"{label} (your label)"
        far = " · likely unknown" if self.unknown[i] > LIKELY_UNKNOWN else ""
        return f"{label} · {self.conf[i]:.0%}{far}"

    # ------------------------------------------------------------------ export and projects
    def label_rows(self) -> list[LabelRow]:
        """One row per labeled image: the user's label (source "user") or the model's."""
        rows = []
        for i, path in enumerate(self.paths):
            if i in self.failed:
                continue
            user = self.user_label(path)
            if user is not None:
                rows.append(LabelRow(path, user, 1.0, "user"))
            elif (label := self.predicted(i)) is not None:
                unknown = None if np.isnan(self.unknown[i]) else float(self.unknown[i])
                rows.append(
                    LabelRow(path, label, float(self.conf[i]), "model", unknown_score=unknown)
                )
        return rows

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
