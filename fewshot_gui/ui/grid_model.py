"""The grid's list model: a thin Qt view of the review model's rows (100,000 items scroll).

Rows are :attr:`ReviewModel.order` (filter + sort, computed with numpy). The review model's order
events become row insertions or resets, its changed images become ``dataChanged`` spans. While the
user has not started reviewing, a stale order is re-sorted at most ~3 times a second (predictions
streaming in); once they have, it stays frozen until they ask (see ``review/view.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QImage

from fewshot_gui.core.types import FileFailure, Predictions
from fewshot_gui.review import PENDING, ReviewModel
from fewshot_gui.ui.state import subscribe

if TYPE_CHECKING:  # the loader (qt/thumbnails.py): duck-typed here (request, ready)
    from fewshot_gui.qt.thumbnails import ThumbnailLoader

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
LABEL_ROLE = Qt.ItemDataRole.UserRole + 2
CONF_ROLE = Qt.ItemDataRole.UserRole + 3
SOURCE_ROLE = Qt.ItemDataRole.UserRole + 4
FAILED_ROLE = Qt.ItemDataRole.UserRole + 5
BASE_ROLE = Qt.ItemDataRole.UserRole + 6
ITEM_FLAGS = (
    Qt.ItemFlag.ItemIsSelectable
    | Qt.ItemFlag.ItemIsEnabled
    | Qt.ItemFlag.ItemNeverHasChildren
    | Qt.ItemFlag.ItemIsDragEnabled
)
RESORT_MS = 300
"""A stale order (predictions streaming in, nobody reviewing yet) is re-sorted this often."""
REPAINT_SPAN = 5_000
"""Changed rows spanning more than this are repainted (:attr:`ImageListModel.repaintRequested`)
instead of announced by ``dataChanged``: an icon-mode list view re-sizes every item of the span
(a million rows: ~0.2 s), though uniform items never change size."""


class ImageListModel(QAbstractListModel):
    """Every image of the labeled folder with its prediction; rows follow the review order.

    ``repaintRequested``: many rows show something else (the views repaint what they show)."""

    repaintRequested = Signal()

    def __init__(
        self,
        review: ReviewModel,
        thumbnails: ThumbnailLoader | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.review = review
        self.thumbnails = thumbnails
        self._resort_timer = QTimer(self)
        self._resort_timer.setSingleShot(True)
        self._resort_timer.setInterval(RESORT_MS)
        self._resort_timer.timeout.connect(self._resort_if_free)
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)
        subscribe(review.order_about_to_change, self, self._order_about_to_change)
        subscribe(review.order_changed, self, self._order_changed)
        subscribe(review.rows_changed, self, self._rows_changed)
        subscribe(review.order_stale, self, self._order_stale)
        subscribe(review.classes_changed, self, self._all_changed)

    # ------------------------------------------------------------------ the review model's
    @property
    def paths(self) -> list[str]:
        return self.review.paths

    @property
    def index_of(self) -> dict[str, int]:
        return self.review.index_of

    @property
    def codes(self) -> np.ndarray:
        return self.review.codes

    @property
    def conf(self) -> np.ndarray:
        return self.review.conf

    @property
    def failed(self) -> dict[int, str]:
        return self.review.failed

    @property
    def order(self) -> np.ndarray:
        return self.review.order

    @property
    def names(self) -> list[str]:
        return self.review.code_names

    def label(self, i: int) -> str | None:
        return self.review.label(i)

    def predicted(self, i: int) -> str | None:
        return self.review.predicted(i)

    def row_of(self, base: int) -> int:
        return self.review.row_of(base)

    def update_predictions(self, predictions: Predictions) -> None:
        self.review.update_predictions(predictions)

    def add_failures(self, failures: Sequence[FileFailure]) -> None:
        self.review.add_failures(failures)

    def clear(self) -> None:
        self.review.clear()

    def set_view(self, kind: str, class_name: str = "", sort: str | None = None) -> None:
        self.review.set_view(kind, class_name, sort)

    def reorder(self) -> None:
        self.review.resort()

    # ------------------------------------------------------------------ Qt model API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.review.order)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        # asked for every visible cell on every repaint: a constant, no call back into Qt
        return ITEM_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0):
        review = self.review
        if not index.isValid() or index.row() >= len(review.order):
            return None
        i = int(review.order[index.row()])
        path = review.paths[i]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(path)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.request(path) if self.thumbnails else None
        if role == PATH_ROLE:
            return path
        if role == BASE_ROLE:
            return i
        if role == LABEL_ROLE:
            return review.label(i)
        if role == CONF_ROLE:
            return None if review.codes[i] == PENDING else float(review.conf[i])
        if role == SOURCE_ROLE:
            return "user" if review.user_label(path) is not None else "model"
        if role == FAILED_ROLE:
            return review.failed.get(i)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{path}\n{review.describe(i)}"
        return None

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        mime = QMimeData()
        order, paths = self.review.order, self.review.paths
        mime.setUrls([QUrl.fromLocalFile(paths[int(order[ix.row()])]) for ix in indexes])
        return mime

    # ------------------------------------------------------------------ review model events
    def _order_about_to_change(self, first: int, last: int) -> None:
        if first < 0:
            self.beginResetModel()
        else:
            self.beginInsertRows(QModelIndex(), first, last)

    def _order_changed(self, first: int, _last: int) -> None:
        if first < 0:
            self.endResetModel()
        else:
            self.endInsertRows()

    def _rows_changed(self, base: np.ndarray) -> None:
        pos = self.review.pos
        base = np.asarray(base, np.int64)
        rows = pos[base[base < len(pos)]]
        rows = rows[rows >= 0]
        if len(rows):
            self._changed(int(rows.min()), int(rows.max()))

    def _changed(self, first: int, last: int) -> None:
        """Rows ``first..last`` show something else."""
        if last - first >= REPAINT_SPAN:
            self.repaintRequested.emit()
        else:
            self.dataChanged.emit(self.index(first), self.index(last))

    def _order_stale(self) -> None:
        if not self.review.frozen and not self._resort_timer.isActive():
            self._resort_timer.start()

    def _resort_if_free(self) -> None:
        if self.review.stale and not self.review.frozen:
            self.review.resort()

    def _thumbnail_ready(self, path: str, _image: QImage) -> None:
        i = self.review.index_of.get(path)
        if i is not None and (row := self.review.row_of(i)) >= 0:
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])

    def _all_changed(self) -> None:
        if len(self.review.order):
            self._changed(0, len(self.review.order) - 1)
