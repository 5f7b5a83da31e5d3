"""The image grid: a virtualised QListView over an array-backed list model (100,000 items scroll).

The model keeps numpy arrays (label code, confidence, failed) for every image and a view ``order``
(filter + sort, computed with numpy), so sorting 100,000 items never calls Python per comparison.
Thumbnails are requested only when the view paints a cell (visible items only).

The view reaches the model through a pass-through QSortFilterProxyModel (same rows, no sorting or
filtering of its own): Qt's list layout asks the model for an index of every row each time rows
are added, and the proxy answers in C++ where the Python model would be called twice per row
(each call waiting for the GIL while the worker runs: 0.05 s for 2,000 rows, seconds for 100,000).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelection,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.core.types import UNKNOWN
from fewshot_gui.ui.state import UNKNOWN_COLOR, LabelState
from fewshot_gui.workers.thumbnails import ThumbnailLoader

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
LABEL_ROLE = Qt.ItemDataRole.UserRole + 2
CONF_ROLE = Qt.ItemDataRole.UserRole + 3
SOURCE_ROLE = Qt.ItemDataRole.UserRole + 4
FAILED_ROLE = Qt.ItemDataRole.UserRole + 5
BASE_ROLE = Qt.ItemDataRole.UserRole + 6
CELL = 140
THUMB = 108
"""Thumbnail size that fits a cell unscaled (drawn 1:1: no scaling per paint)."""

ITEM_FLAGS = (
    Qt.ItemFlag.ItemIsSelectable
    | Qt.ItemFlag.ItemIsEnabled
    | Qt.ItemFlag.ItemNeverHasChildren
    | Qt.ItemFlag.ItemIsDragEnabled
)
SORTS = {"folder order": "order", "least confident first": "confidence", "file name": "name"}
PENDING = -1


class ImageListModel(QAbstractListModel):
    """Every image of the labeled folder with its prediction; rows follow :attr:`order`."""

    def __init__(self, state: LabelState, thumbnails: ThumbnailLoader | None = None) -> None:
        super().__init__()
        self.state = state
        self.thumbnails = thumbnails
        self.paths: list[str] = []
        self.index_of: dict[str, int] = {}
        self.names: list[str] = []  # label codes → names
        self._code: dict[str, int] = {}
        self.codes = np.zeros(0, np.int32)
        self.conf = np.zeros(0, np.float32)
        self.failed: dict[int, str] = {}
        self.order = np.zeros(0, np.int64)
        self.pos = np.zeros(0, np.int64)
        self.filter_kind, self.filter_class, self.sort = "all", "", "order"
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)
        state.correctionsChanged.connect(self._corrections_changed)
        state.classesChanged.connect(self._all_changed)

    # ------------------------------------------------------------------ Qt model API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.order)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        # asked for every visible cell on every repaint: a constant, no call back into Qt
        return ITEM_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0):
        if not index.isValid() or index.row() >= len(self.order):
            return None
        i = int(self.order[index.row()])
        path = self.paths[i]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(path)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.request(path) if self.thumbnails else None
        if role == PATH_ROLE:
            return path
        if role == BASE_ROLE:
            return i
        if role == LABEL_ROLE:
            return self.label(i)
        if role == CONF_ROLE:
            return None if self.codes[i] == PENDING else float(self.conf[i])
        if role == SOURCE_ROLE:
            return "user" if path in self.state.corrections else "model"
        if role == FAILED_ROLE:
            return self.failed.get(i)
        if role == Qt.ItemDataRole.ToolTipRole:
            label, conf = self.label(i), self.conf[i]
            source = "your label" if path in self.state.corrections else f"{conf:.0%} confident"
            extra = f"\nfailed: {self.failed[i]}" if i in self.failed else ""
            return f"{path}\n{label or 'not labeled yet'} ({source}){extra}"
        return None

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(self.paths[int(self.order[ix.row()])]) for ix in indexes])
        return mime

    # ------------------------------------------------------------------ content
    def label(self, i: int) -> str | None:
        """User label if corrected, else the predicted one (None while pending)."""
        user = self.state.corrections.get(self.paths[i])
        if user is not None:
            return user
        code = int(self.codes[i])
        return None if code == PENDING else self.names[code]

    def predicted(self, i: int) -> str | None:
        code = int(self.codes[i])
        return None if code == PENDING else self.names[code]

    def clear(self) -> None:
        self.beginResetModel()
        self.paths, self.index_of, self.failed = [], {}, {}
        self.codes, self.conf = np.zeros(0, np.int32), np.zeros(0, np.float32)
        self.order, self.pos = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.endResetModel()

    def _code_of(self, name: str) -> int:
        code = self._code.get(name)
        if code is None:
            code = self._code[name] = len(self.names)
            self.names.append(name)
        return code

    def _grow(self, paths: Sequence[str]) -> np.ndarray:
        """Base indices of ``paths``, appending unknown ones (pending)."""
        new = [p for p in dict.fromkeys(paths) if p not in self.index_of]
        if new:
            start = len(self.paths)
            for k, p in enumerate(new):
                self.index_of[p] = start + k
            self.paths.extend(new)
            self.codes = np.concatenate([self.codes, np.full(len(new), PENDING, np.int32)])
            self.conf = np.concatenate([self.conf, np.zeros(len(new), np.float32)])
        return np.fromiter((self.index_of[p] for p in paths), np.int64, len(paths))

    def update_predictions(self, predictions) -> None:
        """Merge predictions (a batch, or all images) into the model; cheap for 100,000 rows."""
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
        if self.failed:
            for r in set(self.failed).intersection(rows.tolist()):
                del self.failed[r]
        self._after_change(before, rows)

    def add_failures(self, failures: Sequence) -> None:
        """Mark files that failed (``FileFailure``) so the "failed" filter lists them."""
        before = len(self.paths)
        rows = self._grow([f.path for f in failures])
        for r, f in zip(rows, failures, strict=True):
            self.failed[int(r)] = f.reason
        self._after_change(before, rows)

    def _after_change(self, before: int, changed: np.ndarray) -> None:
        natural = self.filter_kind == "all" and self.sort == "order"
        if natural and len(self.order) == before:
            n = len(self.paths)
            if n > before:
                self.beginInsertRows(QModelIndex(), before, n - 1)
                self.order = np.arange(n, dtype=np.int64)
                self.pos = self.order.copy()
                self.endInsertRows()
            old = changed[changed < before]  # rows that existed: repaint only their span
            if len(old):
                self.dataChanged.emit(self.index(int(old.min())), self.index(int(old.max())))
        else:
            self.reorder_later()

    def reorder_later(self) -> None:
        """Coalesce re-sorting while predictions stream in (at most ~3 times a second)."""
        if not hasattr(self, "_timer"):
            self._timer = QTimer(self)
            self._timer.setSingleShot(True)
            self._timer.setInterval(300)
            self._timer.timeout.connect(self.reorder)
        if not self._timer.isActive():
            self._timer.start()

    def compute_order(self) -> np.ndarray:
        n = len(self.paths)
        keep = np.ones(n, bool)
        corrected = np.zeros(n, bool)
        for p in self.state.corrections:
            i = self.index_of.get(p)
            if i is not None:
                corrected[i] = True
        if self.filter_kind in ("class", "unknown"):
            name = UNKNOWN if self.filter_kind == "unknown" else self.filter_class
            code = self._code.get(name, -99)
            keep = (self.codes == code) & ~corrected
            for p, lab in self.state.corrections.items():
                i = self.index_of.get(p)
                if i is not None and lab == name:
                    keep[i] = True
        elif self.filter_kind == "corrected":
            keep = corrected
        elif self.filter_kind == "failed":
            keep = np.zeros(n, bool)
            keep[list(self.failed)] = True
        elif self.filter_kind == "pending":
            keep = self.codes == PENDING
        idx = np.flatnonzero(keep)
        if self.sort == "confidence":
            key = np.where(corrected[idx] | (self.codes[idx] == PENDING), 2.0, self.conf[idx])
            idx = idx[np.argsort(key, kind="stable")]
        elif self.sort == "name":
            names = np.array([os.path.basename(self.paths[i]).lower() for i in idx], dtype=object)
            idx = idx[np.argsort(names, kind="stable")] if len(idx) else idx
        return idx.astype(np.int64)

    def reorder(self) -> None:
        """Apply filter and sort now (model reset; the grid restores its selection)."""
        self.beginResetModel()
        self.order = self.compute_order()
        self.pos = np.full(len(self.paths), -1, np.int64)
        self.pos[self.order] = np.arange(len(self.order))
        self.endResetModel()

    def set_view(self, kind: str, class_name: str = "", sort: str | None = None) -> None:
        self.filter_kind, self.filter_class = kind, class_name
        if sort is not None:
            self.sort = sort
        self.reorder()

    def row_of(self, base: int) -> int:
        return int(self.pos[base]) if 0 <= base < len(self.pos) else -1

    def _thumbnail_ready(self, path: str, _image: QImage) -> None:
        i = self.index_of.get(path)
        if i is not None and (row := self.row_of(i)) >= 0:
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])

    def _corrections_changed(self, paths: list) -> None:
        if self.filter_kind != "all" or self.sort != "order":
            self.reorder_later()
        for p in paths:
            i = self.index_of.get(p)
            if i is not None and (row := self.row_of(i)) >= 0:
                self.dataChanged.emit(self.index(row), self.index(row))

    def _all_changed(self) -> None:
        if len(self.order):
            self.dataChanged.emit(self.index(0), self.index(len(self.order) - 1))


class CellDelegate(QStyledItemDelegate):
    """Thumbnail, a bar in the label's colour with the label and confidence, user / failed marks.

    Each cell is drawn once into a pixmap, kept (up to :attr:`capacity`) under everything it
    shows, so repainting the grid (10 times a second while labeling) costs one ``drawPixmap`` and
    a few lookups per cell. That matters: every call into Qt from Python may wait for the GIL,
    which the labeling worker's threads hold most of the time.
    """

    def __init__(self, state: LabelState, model: ImageListModel, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = model
        self.small = QFont()
        self.small.setPointSizeF(max(7.0, self.small.pointSizeF() - 1))
        self.capacity = 512
        self.ratio = 1.0  # device pixels per pixel: set by the view before each paint
        self._cells: OrderedDict[tuple, QPixmap] = OrderedDict()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(CELL, CELL)

    def cell(self, row: int) -> tuple | None:
        """What the cell at view ``row`` shows: ``(path, label, confidence %, user, failed,
        colour, thumbnail or None)``; None past the end."""
        model = self.model
        if not 0 <= row < len(model.order):
            return None
        i = int(model.order[row])
        path = model.paths[i]
        user = self.state.corrections.get(path)
        code = int(model.codes[i])
        predicted = None if code == PENDING else model.names[code]
        label = user if user is not None else predicted
        info = self.state.find(label) if label and label != UNKNOWN else None
        conf = None if code == PENDING else round(float(model.conf[i]) * 100)
        image = model.thumbnails.request(path) if model.thumbnails is not None else None
        color = info.color if info is not None else UNKNOWN_COLOR
        return path, label, conf, user is not None, model.failed.get(i), color, image

    def pixmap(self, row: int, selected: bool, width: int, height: int) -> QPixmap | None:
        """The cell at view ``row`` drawn at ``width`` × ``height`` (cached); None past the end."""
        cell = self.cell(row)
        if cell is None:
            return None
        image, ratio = cell[6], self.ratio
        key = (*cell[:6], None if image is None else id(image), selected, width, height, ratio)
        pixmap = self._cells.get(key)
        if pixmap is None:
            pixmap = self._render(cell, selected, width, height, ratio)
            self._cells[key] = pixmap
            while len(self._cells) > self.capacity:
                self._cells.popitem(last=False)
        else:
            self._cells.move_to_end(key)
        return pixmap

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        x, y, width, height = option.rect.getRect()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        pixmap = self.pixmap(index.row(), selected, width, height)
        if pixmap is not None:
            painter.drawPixmap(x, y, pixmap)

    def _render(
        self, cell: tuple, selected: bool, width: int, height: int, ratio: float
    ) -> QPixmap:
        _path, label, conf, user, failed, color_name, image = cell
        pixmap = QPixmap(round(width * ratio), round(height * ratio))
        pixmap.setDevicePixelRatio(ratio)
        view = self.parent()  # opaque, as the view's background: text renders as it would there
        if isinstance(view, QListView):
            pixmap.fill(view.viewport().palette().color(view.viewport().backgroundRole()))
        else:
            pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        whole = QRect(0, 0, width, height)
        rect = whole.adjusted(3, 3, -3, -3)
        painter.fillRect(rect, QColor("#505050") if selected else QColor("#2b2b2b"))
        color = QColor(color_name)
        area = QRect(rect.x() + 4, rect.y() + 4, rect.width() - 8, rect.height() - 26)
        if image is not None and not image.isNull():
            size = image.size()
            if size.width() > area.width() or size.height() > area.height():
                size = size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(area.center())
            painter.drawImage(target, image)
        bar = QRect(rect.x(), rect.bottom() - 20, rect.width(), 21)
        if failed:
            painter.fillRect(bar, QColor("#b71c1c"))
            text = "failed"
        elif label is None:
            painter.fillRect(bar, QColor("#424242"))
            text = "…"
        else:
            painter.fillRect(bar, color)
            text = f"✓ {label}" if user else f"{label} {conf}%" if conf is not None else label
        if label is not None and not failed:
            painter.setPen(QPen(color, 3))
            painter.drawRect(rect.adjusted(1, 1, -1, -1))
        if selected:  # the same yellow as the selection rings in the embedding view
            painter.setPen(QPen(QColor("#ffeb3b"), 3))
            painter.drawRect(whole.adjusted(1, 1, -2, -2))
        painter.setPen(QColor("white"))
        painter.setFont(self.small)
        metrics = painter.fontMetrics()
        painter.drawText(
            bar.adjusted(4, 0, -4, 0),
            Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(text, Qt.TextElideMode.ElideRight, bar.width() - 8),
        )
        painter.end()
        return pixmap


class ImageView(QListView):
    """The grid itself: keys 1–9 label, Enter accepts the prediction, Space previews.

    Items sit in a uniform grid of ``CELL`` squares, so the view paints the visible cells itself,
    from the delegate's pixmaps, in one Python call per repaint (Qt's own painting calls into
    Python twice per cell, and each call may wait for the GIL while the worker runs). It checks
    that assumption against Qt's layout on every repaint and lets Qt paint when it does not hold,
    and while the mouse drags a selection rectangle (which Qt draws).
    """

    keyLabel = Signal(int)  # 0-based class index
    acceptRequested = Signal()
    clearRequested = Signal()
    previewRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setGridSize(QSize(CELL, CELL))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(CELL // 3)
        self.setSpacing(0)
        self.setWrapping(True)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        delegate = self.itemDelegate()
        if isinstance(delegate, CellDelegate):  # keep every visible cell's pixmap, twice over
            size = self.viewport().size()
            cells = (size.width() // CELL + 1) * (size.height() // CELL + 2)
            delegate.capacity = max(128, 2 * cells)

    def paintEvent(self, event) -> None:
        delegate = self.itemDelegate()
        if isinstance(delegate, CellDelegate):
            delegate.ratio = self.viewport().devicePixelRatioF()
            dragging = self.state() == QAbstractItemView.State.DragSelectingState  # Qt's band
            if not dragging and self.paint_cells(event.rect(), delegate):
                return
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(QColor("#888"))
            painter.drawText(
                self.viewport().rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            painter.end()

    @staticmethod
    def cell_rect(row: int, columns: int, dx: int, dy: int) -> tuple[int, int, int, int]:
        """Where the grid puts view ``row`` (x, y, width, height in viewport pixels), scrolled
        by ``dx``, ``dy``."""
        line, column = divmod(row, columns)
        return column * CELL - dx, line * CELL - dy, CELL, CELL

    def paint_cells(self, area: QRect, delegate: CellDelegate) -> bool:
        """Paint the cells that meet ``area`` in one pass; False (nothing painted) when Qt's
        layout is not the uniform grid this assumes, or there is nothing to show."""
        model = self.model()
        source = model.sourceModel() if isinstance(model, QSortFilterProxyModel) else model
        if not isinstance(source, ImageListModel) or not len(source.order):
            return False
        n = len(source.order)
        columns = max(1, self.viewport().width() // CELL)
        dx, dy = self.horizontalOffset(), self.verticalOffset()
        x0, y0, width, height = area.getRect()
        top = dy + y0
        first = max(0, top // CELL) * columns
        last = min(n - 1, ((top + height - 1) // CELL + 1) * columns - 1)
        if first > last:
            return False
        for row in {first, last}:  # Qt's layout must agree at both ends
            if self.visualRect(model.index(row, 0)).getRect() != self.cell_rect(
                row, columns, dx, dy
            ):
                return False
        selection, root = self.selectionModel(), self.rootIndex()
        painter = QPainter(self.viewport())
        for row in range(first, last + 1):
            x, y, w, h = self.cell_rect(row, columns, dx, dy)
            if x + w <= x0 or x >= x0 + width:
                continue
            pixmap = delegate.pixmap(row, selection.isRowSelected(row, root), w, h)
            if pixmap is not None:
                painter.drawPixmap(x, y, pixmap)
        painter.end()
        return True

    placeholder = (
        "1. Add classes and drop a few example images on each.\n"
        "2. Choose the folder to label.\n3. Press ▶ Label folder.\n\n"
        "Then correct labels with keys 1–9 (Enter accepts), sort by least confident "
        "first to review, and lasso clusters in the embedding view."
    )

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9 and not event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        ):
            self.keyLabel.emit(int(key) - int(Qt.Key.Key_1))
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.acceptRequested.emit()
        elif key == Qt.Key.Key_Space:
            self.previewRequested.emit()
        elif key in (Qt.Key.Key_Backspace, Qt.Key.Key_0):
            self.clearRequested.emit()
        else:
            super().keyPressEvent(event)


class ImageGrid(QWidget):
    """Filter / sort bar + the grid; emits what the user asks for, as paths."""

    labelRequested = Signal(list, object)  # paths, label (None clears the user label)
    selectionChangedBase = Signal(object)  # np.ndarray of base indices
    previewRequested = Signal(str)

    def __init__(
        self, state: LabelState, thumbnails: ThumbnailLoader | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.model = ImageListModel(state, thumbnails)
        self.rows = QSortFilterProxyModel(self)  # the view's model: see the module docstring
        self.rows.setDynamicSortFilter(False)
        self.rows.setSourceModel(self.model)
        self.view = ImageView(self)
        self.view.setModel(self.rows)
        self.delegate = CellDelegate(state, self.model, self.view)
        self.view.setItemDelegate(self.delegate)
        self.filter_box = QComboBox(self)
        self.sort_box = QComboBox(self)
        self.sort_box.addItems(list(SORTS))
        self.count_label = QLabel(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.filter_box, 1)
        bar.addWidget(QLabel("Sort"))
        bar.addWidget(self.sort_box, 1)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
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
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.keyLabel.connect(self._key_label)
        self.view.acceptRequested.connect(self.accept_prediction)
        self.view.clearRequested.connect(lambda: self._emit_label(None))
        self.view.previewRequested.connect(self._preview_current)
        self.view.doubleClicked.connect(lambda ix: self.previewRequested.emit(ix.data(PATH_ROLE)))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)

    # ------------------------------------------------------------------ filters
    def _refresh_filters(self) -> None:
        current = self.filter_box.currentData()
        self.filter_box.blockSignals(True)
        self.filter_box.clear()
        for text, data in [
            ("all images", ("all", "")),
            ("not yet labeled", ("pending", "")),
            ("unknown", ("unknown", "")),
            ("corrected by you", ("corrected", "")),
            ("failed files", ("failed", "")),
        ]:
            self.filter_box.addItem(text, data)
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
        self.model.set_view(kind, name, SORTS[self.sort_box.currentText()])
        self._update_count()

    def set_filter(self, kind: str, name: str = "") -> None:
        for k in range(self.filter_box.count()):
            if tuple(self.filter_box.itemData(k)) == (kind, name):
                self.filter_box.setCurrentIndex(k)
                return

    def set_sort(self, text: str) -> None:
        self.sort_box.setCurrentText(text)

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.model.rowCount():,} of {len(self.model.paths):,}")

    # ------------------------------------------------------------------ selection
    def index(self, row: int) -> QModelIndex:
        """The view's index of ``row`` (rows are the model's rows: see :attr:`rows`)."""
        return self.rows.index(row, 0)

    def selected_base(self) -> np.ndarray:
        rows = sorted(ix.row() for ix in self.view.selectionModel().selectedIndexes())
        return self.model.order[rows] if rows else np.zeros(0, np.int64)

    def selected_paths(self) -> list[str]:
        return [self.model.paths[int(i)] for i in self.selected_base()]

    def select_base(self, base: Sequence[int] | np.ndarray, scroll: bool = True) -> None:
        """Select images by base index (e.g. from the plot), without echoing the change back."""
        rows = sorted({self.model.row_of(int(b)) for b in base} - {-1})
        selection = QItemSelection()
        start = prev = None
        for r in rows:  # contiguous ranges keep 100,000-row selections cheap
            if start is None:
                start = prev = r
            elif r == prev + 1:
                prev = r
            else:
                selection.select(self.index(start), self.index(prev))
                start = prev = r
        if start is not None:
            selection.select(self.index(start), self.index(prev))
        self._suppress = True
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.view.selectionModel().select(selection, flags)
        if rows:
            self.view.selectionModel().setCurrentIndex(
                self.index(rows[0]), QItemSelectionModel.SelectionFlag.NoUpdate
            )
            if scroll:
                self.view.scrollTo(self.index(rows[0]))
        self._suppress = False

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

    def _key_label(self, k: int) -> None:
        names = self.state.names()
        if k < len(names):
            self._emit_label(names[k])

    def accept_prediction(self) -> None:
        """Enter: the selected images keep their predicted label (as user labels); go to the next."""
        base = self.selected_base()
        groups: dict[str, list[str]] = {}
        for i in base:
            label = self.model.predicted(int(i))
            if label and label != UNKNOWN and label in self.state.names():
                groups.setdefault(label, []).append(self.model.paths[int(i)])
        current = self.view.currentIndex().row()
        for label, paths in groups.items():
            self.labelRequested.emit(paths, label)
        self.select_next(current)

    def select_next(self, row: int) -> None:
        nxt = min(row + 1, self.model.rowCount() - 1)
        if nxt >= 0:
            ix = self.index(nxt)
            self.view.selectionModel().setCurrentIndex(
                ix, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
            self.view.scrollTo(ix)

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
        for k, name in enumerate(self.state.names()):
            action = sub.addAction(f"{name}\t{k + 1}" if k < 9 else name)
            action.triggered.connect(lambda _=False, n=name: self._emit_label(n))
        menu.addAction("Accept prediction\tEnter", self.accept_prediction)
        menu.addAction("Clear my label\t0", lambda: self._emit_label(None))
        menu.addAction("Preview\tSpace", self._preview_current)
        return menu


def paths_from_mime(mime: QMimeData, accept: Callable[[str], bool] | None = None) -> list[str]:
    """Local file paths in a drop or paste (urls, or plain text with one path per line)."""
    paths: list[str] = []
    if mime.hasUrls():
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    elif mime.hasText():
        for line in mime.text().splitlines():
            line = line.strip()
            if line.startswith("file://"):
                line = QUrl(line).toLocalFile()
            if line:
                paths.append(line)
    paths = [os.path.abspath(p) for p in paths if p]
    return [p for p in paths if accept is None or accept(p)]
