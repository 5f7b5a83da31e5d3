"""The grid's view of the review model: filter, sort, the frozen order and its events.

Review never loses its place: once the user labels an image in a sorted or filtered view, that
view's order is *frozen* (images keep their rows; new images are appended) until the user asks
for a re-sort (:meth:`ViewMixin.resort`) or changes the view (:meth:`ViewMixin.set_view`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from fewshot_gui.core.types import LIKELY_UNKNOWN, UNKNOWN
from fewshot_gui.review.constants import PENDING
from fewshot_gui.review.images import ImageTable


class ViewMixin:
    """``order`` (rows → base indices) and ``pos`` (base index → row, -1 when hidden) of the
    current filter and sort; part of :class:`ReviewModel`."""

    images: ImageTable
    paths: list[str]
    codes: np.ndarray
    conf: np.ndarray
    unknown: np.ndarray
    failed: dict[int, str]
    order: np.ndarray
    pos: np.ndarray
    filter_kind: str
    filter_class: str
    sort: str
    frozen: bool
    stale: bool
    selection: np.ndarray
    view_selection: np.ndarray
    _points_found: bool
    order_about_to_change: Any
    order_changed: Any
    order_stale: Any
    rows_changed: Any
    review_changed: Any
    points_changed: Any

    def natural(self) -> bool:
        """All images in folder order: rows are base indices, nothing to freeze."""
        return self.filter_kind == "all" and self.sort == "order"

    def keep_mask(self) -> np.ndarray:
        """``(N,)`` bool: images the current filter shows."""
        n, kind = len(self.paths), self.filter_kind
        if kind in ("class", "unknown"):
            code = self.images.find_code(UNKNOWN if kind == "unknown" else self.filter_class)
            return self.display_codes() == (-99 if code is None else code)
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
            idx = idx[np.argsort(self._name_ranks()[idx], kind="stable")]
        return idx.astype(np.int64)

    def _name_ranks(self) -> np.ndarray:
        """``(N,)`` rank of each image's lower-cased file name, kept until the images change (a
        million names take seconds to sort in Python; every later sort by name is numpy)."""
        paths = self.paths
        cached = getattr(self, "_name_cache", None)
        if cached is None or cached[0] is not paths or len(cached[1]) != len(paths):
            names = [os.path.basename(path).lower() for path in paths]
            ranks = np.empty(len(names), np.int64)
            ranks[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
            self._name_cache = (paths, ranks)  # holds ``paths``: a new table is a new list
        return self._name_cache[1]

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
        rows = np.flatnonzero(self.todo_mask()[self.order])
        if not len(rows):
            return -1
        later = rows[rows > row]
        return int(later[0] if len(later) else rows[0])

    def _mark_stale(self) -> None:
        self.stale = True
        self.order_stale.emit()

    def _after_change(self, before: int, changed: np.ndarray) -> None:
        """Images ``before:`` are new and base indices ``changed`` show something else: keep the
        order (appending, re-sorting or marking it stale) and tell the views."""
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

    if TYPE_CHECKING:  # the other parts of ReviewModel

        def display_codes(self) -> np.ndarray: ...
        def user_mask(self) -> np.ndarray: ...
        def changed_mask(self) -> np.ndarray: ...
        def todo_mask(self, user: np.ndarray | None = None) -> np.ndarray: ...
