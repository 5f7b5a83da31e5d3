"""The image grid: a virtualised QListView over the review model's rows, with the filter / sort
bar and the review counter.

The list model (``grid_model.py``) and the cell delegate (``grid_delegate.py``) are thin views of
:class:`~fewshot_gui.review.ReviewModel`; thumbnails are requested only when the view paints a
cell (visible items only). Keys 1–9 label the selected images and Enter accepts the prediction;
both move on to the next image the user has not labeled, in a view whose order stays put while
the user reviews (F5 re-sorts).

The view reaches the model through a pass-through QSortFilterProxyModel (same rows, no sorting or
filtering of its own): Qt's list layout asks the model for an index of every row each time rows
are added, and the proxy answers in C++ where the Python model would be called twice per row
(each call waiting for the GIL while the worker runs: 0.05 s for 2,000 rows, seconds for 100,000).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.review import FILTERS, PENDING, SORTS
from fewshot_gui.ui.dropped_paths import paths_from_mime
from fewshot_gui.ui.grid_delegate import CELL, THUMB, CellDelegate
from fewshot_gui.ui.grid_model import (
    BASE_ROLE,
    CONF_ROLE,
    FAILED_ROLE,
    LABEL_ROLE,
    PATH_ROLE,
    SOURCE_ROLE,
    ImageListModel,
)
from fewshot_gui.ui.image_view import ImageView
from fewshot_gui.ui.state import LabelState, subscribe

if TYPE_CHECKING:
    from fewshot_gui.qt.thumbnails import ThumbnailLoader

__all__ = [
    "BASE_ROLE",
    "CELL",
    "CONF_ROLE",
    "FAILED_ROLE",
    "LABEL_ROLE",
    "PATH_ROLE",
    "PENDING",
    "SORTS",
    "SOURCE_ROLE",
    "THUMB",
    "CellDelegate",
    "ImageGrid",
    "ImageListModel",
    "ImageView",
    "paths_from_mime",
]


class ImageGrid(QWidget):
    """Filter / sort bar, review counter and the grid; emits what the user asks for, as paths."""

    labelRequested = Signal(list, object)  # paths, label (None clears the user label)
    exampleRequested = Signal(list, str)  # paths, class name: add them as examples
    selectionChangedBase = Signal(object)  # np.ndarray of base indices
    previewRequested = Signal(str)
    reviewModeRequested = Signal()
    viewChanged = Signal(str)  # the filter kind now shown

    def __init__(
        self, state: LabelState, thumbnails: ThumbnailLoader | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.review = state.review
        self.model = ImageListModel(self.review, thumbnails, self)
        self.rows = QSortFilterProxyModel(self)  # the view's model: see the module docstring
        self.rows.setDynamicSortFilter(False)
        self.rows.setSourceModel(self.model)
        self.view = ImageView(self)
        self.view.setModel(self.rows)
        self.delegate = CellDelegate(self.model, self.view)
        self.view.setItemDelegate(self.delegate)
        self.filter_box = QComboBox(self)
        self.sort_box = QComboBox(self)
        self.sort_box.addItems(list(SORTS))
        self.resort_button = QToolButton(self)
        self.resort_button.setText("Re-sort")
        self.resort_button.setShortcut(QKeySequence("F5"))
        self.resort_button.setToolTip(
            "While you review, images keep their places; re-sort to apply the sort and filter "
            "to the new labels (F5)"
        )
        self.resort_button.clicked.connect(self.review.resort)
        self.count_label = QLabel(self)
        self.counter = QLabel(self)
        self.counter.setTextFormat(Qt.TextFormat.RichText)
        self.counter.linkActivated.connect(lambda _link: self.set_filter("changed"))
        self.one_by_one = QToolButton(self)
        self.one_by_one.setText("Review one by one…")
        self.one_by_one.setToolTip("A large image at a time: keys 1–9, Enter accepts, → skips")
        self.one_by_one.clicked.connect(self.reviewModeRequested.emit)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.filter_box, 1)
        bar.addWidget(QLabel("Sort"))
        bar.addWidget(self.sort_box, 1)
        bar.addWidget(self.resort_button)
        bar.addWidget(self.count_label)
        review_bar = QHBoxLayout()
        review_bar.addWidget(self.counter, 1)
        review_bar.addWidget(self.one_by_one)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(review_bar)
        layout.addWidget(self.view, 1)
        self._saved: list[int] = []
        self._suppress = False
        self._refresh_filters()
        state.classesChanged.connect(self._refresh_filters)
        self.filter_box.currentIndexChanged.connect(self._apply_view)
        self.sort_box.currentIndexChanged.connect(self._apply_view)
        self.model.modelAboutToBeReset.connect(self._save_selection)
        self.model.modelReset.connect(self._restore_selection)
        self.model.rowsInserted.connect(self._update_count)
        self.model.repaintRequested.connect(self.view.viewport().update)  # many rows changed
        subscribe(self.review.review_changed, self, self._update_count)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.keyLabel.connect(self._key_label)
        self.view.acceptRequested.connect(self.accept_prediction)
        self.view.clearRequested.connect(lambda: self._emit_label(None))
        self.view.previewRequested.connect(self._preview_current)
        self.view.doubleClicked.connect(lambda ix: self.previewRequested.emit(ix.data(PATH_ROLE)))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self._update_count()

    # ------------------------------------------------------------------ filters
    def _refresh_filters(self) -> None:
        current = self.filter_box.currentData()
        self.filter_box.blockSignals(True)
        self.filter_box.clear()
        for kind, text in FILTERS.items():
            self.filter_box.addItem(text, (kind, ""))
        for name in self.state.names():
            self.filter_box.addItem(f"class: {name}", ("class", name))
        found = next(
            (
                k
                for k in range(self.filter_box.count())
                if current and tuple(self.filter_box.itemData(k)) == tuple(current)
            ),
            -1,
        )
        self.filter_box.setCurrentIndex(max(0, found))
        self.filter_box.blockSignals(False)
        if current and found < 0:
            self._apply_view()

    def _apply_view(self) -> None:
        kind, name = self.filter_box.currentData() or ("all", "")
        sort = SORTS[self.sort_box.currentText()]
        if kind == "selection":
            self.review.sort = sort
            self.review.show_selection_only()
        else:
            self.review.set_view(kind, name, sort)
        self._update_count()
        self.viewChanged.emit(kind)

    def set_filter(self, kind: str, name: str = "") -> None:
        """Show one filter (applied again if it is the current one: e.g. a new selection)."""
        for k in range(self.filter_box.count()):
            if tuple(self.filter_box.itemData(k)) == (kind, name):
                if k == self.filter_box.currentIndex():
                    self._apply_view()
                else:
                    self.filter_box.setCurrentIndex(k)
                return

    def set_sort(self, text: str) -> None:
        """Sort by ``text``; asked for the current sort, re-sort (e.g. Ctrl+R, the review queue)."""
        if self.sort_box.currentText() == text:
            self._apply_view()
        else:
            self.sort_box.setCurrentText(text)

    def _update_count(self) -> None:
        review = self.review
        self.count_label.setText(f"{self.model.rowCount():,} of {len(review.paths):,}")
        counts = review.counts()
        text = f"Reviewed {counts.reviewed:,} · {counts.remaining:,} to go"
        if counts.changed:
            s = "" if counts.changed == 1 else "s"
            text += (
                f" · <b>your last action changed {counts.changed:,} other label{s}</b> "
                '(<a href="changed">show</a>)'
            )
        elif review.finished_actions:
            text += " · your last action changed no other label"
        self.counter.setText(text)
        waiting = review.frozen and review.stale
        self.resort_button.setEnabled(not review.natural())
        self.resort_button.setText("Re-sort ●" if waiting else "Re-sort")

    # ------------------------------------------------------------------ selection
    def index(self, row: int) -> QModelIndex:
        """The view's index of ``row`` (rows are the model's rows: see :attr:`rows`)."""
        return self.rows.index(row, 0)

    def selected_rows(self) -> list[int]:
        return sorted(ix.row() for ix in self.view.selectionModel().selectedIndexes())

    def selected_base(self) -> np.ndarray:
        rows = self.selected_rows()
        return self.review.order[rows] if rows else np.zeros(0, np.int64)

    def selected_paths(self) -> list[str]:
        return [self.review.paths[int(i)] for i in self.selected_base()]

    def select_base(self, base: Sequence[int] | np.ndarray, scroll: bool = True) -> None:
        """Select images by base index (e.g. from the plot), without echoing the change back."""
        pos, base = self.review.pos, np.asarray(base, np.int64)
        rows = np.unique(pos[base[(base >= 0) & (base < len(pos))]])
        rows = rows[rows >= 0]
        gaps = np.flatnonzero(np.diff(rows) != 1)  # contiguous ranges keep big selections cheap
        starts, ends = np.append(rows[:1], rows[gaps + 1]), np.append(rows[gaps], rows[-1:])
        selection = QItemSelection()
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            selection.select(self.index(start), self.index(end))
        self._suppress = True
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.view.selectionModel().select(selection, flags)
        if len(rows):
            first = int(rows[0])
            self.view.selectionModel().setCurrentIndex(
                self.index(first), QItemSelectionModel.SelectionFlag.NoUpdate
            )
            if scroll:
                self.view.scrollTo(self.index(first))
        self._suppress = False

    def select_row(self, row: int) -> None:
        """Make ``row`` the current and only selected image, scrolled into view if it is not."""
        if 0 <= row < self.model.rowCount():
            ix = self.index(row)
            self.view.selectionModel().setCurrentIndex(
                ix, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
            self.view.scrollTo(ix, QAbstractItemView.ScrollHint.EnsureVisible)

    def _save_selection(self) -> None:
        self._saved = [int(b) for b in self.selected_base()]

    def _restore_selection(self) -> None:
        if self._saved:
            self.select_base(self._saved, scroll=False)
        self._update_count()

    def _selection_changed(self) -> None:
        if not self._suppress:
            self.selectionChangedBase.emit(self.selected_base())

    # ------------------------------------------------------------------ labeling
    def _emit_label(self, label: str | None) -> None:
        paths = self.selected_paths()
        if paths:
            self.labelRequested.emit(paths, label)

    def _last_row(self) -> int:
        rows = self.selected_rows()
        return rows[-1] if rows else self.view.currentIndex().row()

    def _key_label(self, k: int) -> None:
        names = self.state.names()
        if k < len(names) and self.selected_rows():
            self.label_and_advance(names[k])

    def label_and_advance(self, label: str) -> None:
        """Label the selected images, then select the next image the user has not labeled."""
        last = self._last_row()
        self._emit_label(label)
        self.select_row(self.review.next_unreviewed(last))

    def accept_prediction(self) -> None:
        """Enter: the selected images keep their predicted label (as user labels; an image the
        user labeled keeps theirs); then the next image the user has not labeled."""
        last = self._last_row()
        groups: dict[str, list[str]] = {}
        review = self.review
        for i in self.selected_base():
            path = review.paths[int(i)]
            label = review.predicted(int(i))
            if review.user_label(path) is None and label and label in self.state.names():
                groups.setdefault(label, []).append(path)
        for label, paths in groups.items():
            self.labelRequested.emit(paths, label)
        if last >= 0:
            self.select_row(review.next_unreviewed(last))

    def _preview_current(self) -> None:
        ix = self.view.currentIndex()
        if ix.isValid():
            self.previewRequested.emit(ix.data(PATH_ROLE))

    def _context_menu(self, pos) -> None:
        if not self.selected_paths():
            return
        menu = self.build_menu()
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def build_menu(self) -> QMenu:
        menu = QMenu(self)
        sub = menu.addMenu("Label as")
        examples = menu.addMenu("Add as example of")
        for k, name in enumerate(self.state.names()):
            action = sub.addAction(f"{name}\t{k + 1}" if k < 9 else name)
            action.triggered.connect(lambda _=False, n=name: self.label_and_advance(n))
            examples.addAction(
                name, lambda n=name: self.exampleRequested.emit(self.selected_paths(), n)
            )
        menu.addAction("Accept prediction\tEnter", self.accept_prediction)
        menu.addAction("Clear my label\t0", lambda: self._emit_label(None))
        menu.addAction("Preview\tSpace", self._preview_current)
        menu.addAction("Review one by one…", self.reviewModeRequested.emit)
        return menu
