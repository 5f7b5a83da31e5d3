"""The review model: one object holding what the user reviews, with events (see the package)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from fewshot_gui.core.types import LIKELY_UNKNOWN, FileFailure, Predictions
from fewshot_gui.data.export import LabelRow
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.review.changes import ChangesMixin
from fewshot_gui.review.classes import ClassesMixin
from fewshot_gui.review.constants import PENDING
from fewshot_gui.review.events import Event
from fewshot_gui.review.images import ImageTable
from fewshot_gui.review.points import PointsMixin
from fewshot_gui.review.view import ViewMixin


class ReviewModel(ClassesMixin, ChangesMixin, ViewMixin, PointsMixin):
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

    def _reset_images(self, images: ImageTable | None = None) -> None:
        self.images = images if images is not None else ImageTable()
        self.order = np.zeros(0, np.int64)
        self.pos = np.zeros(0, np.int64)
        self.last_changed = np.zeros(0, np.int64)
        self._was = np.zeros(0, np.int32)
        self.finished_actions = 0  # actions whose changes are known
        self._before = None
        self._acted = set()
        self._awaiting = 0

    # ------------------------------------------------------------------ the images (ImageTable)
    @property
    def paths(self) -> list[str]:  # type: ignore[override]
        return self.images.paths

    @property
    def index_of(self) -> dict[str, int]:  # type: ignore[override]
        return self.images.index_of

    @property
    def code_names(self) -> list[str]:  # type: ignore[override]
        """Label code → name."""
        return self.images.code_names

    @property
    def codes(self) -> np.ndarray:  # type: ignore[override]
        return self.images.codes

    @property
    def conf(self) -> np.ndarray:  # type: ignore[override]
        return self.images.conf

    @property
    def unknown(self) -> np.ndarray:  # type: ignore[override]
        """Unknown score (NaN while pending / not computed)."""
        return self.images.unknown

    @property
    def failed(self) -> dict[int, str]:  # type: ignore[override]
        return self.images.failed

    def _code_of(self, name: str) -> int:
        return self.images.code_of(name)

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

    def update_predictions(self, predictions: Predictions) -> None:
        """Merge predictions (a batch, or all images after a correction): numpy over the whole
        arrays, Python work only for new images (a million re-labeled: ~0.1 s)."""
        if not len(predictions.paths):
            return
        before = len(self.paths)
        rows = self.images.merge(predictions)
        if len(self.paths) > before:
            self._map_points()  # reported by _after_change
        full = len(self.paths) == before and len(rows) >= before - len(self.failed)
        if full:
            self._relabeled()
        self._after_change(before, rows)

    def add_failures(self, failures: Sequence[FileFailure]) -> None:
        """Mark files that failed so the "failed" filter lists them."""
        before = len(self.paths)
        rows = self.images.add_failures(failures)
        if len(self.paths) > before:
            self._map_points()
        self._after_change(before, rows)

    def replace_images(self, images: ImageTable) -> None:
        """Show ``images`` (e.g. :meth:`ImageTable.filled` in a thread) instead of every image:
        one view reset; classes and user labels stay."""
        self.order_about_to_change.emit(-1, -1)
        self._reset_images(images)
        self.selection = np.zeros(0, np.int64)
        self.view_selection = np.zeros(0, np.int64)
        self.frozen = self.stale = False
        self._set_order(self.compute_order())
        self.point_base = np.zeros(0, np.int64)
        self._map_points()
        self._points_found = False
        self.order_changed.emit(-1, -1)
        self.review_changed.emit()
        self.points_changed.emit()

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

    def _repaint_paths(self, paths: Iterable[str]) -> None:
        base = [i for p in paths if (i := self.index_of.get(p)) is not None]
        if base:
            self.rows_changed.emit(np.asarray(base, np.int64))

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
