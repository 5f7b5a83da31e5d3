"""The grid view: a QListView in icon mode over the image list model, painting its uniform cells
itself in one pass; keys 1–9 label, Enter accepts, Space previews, 0 / Backspace clears."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from fewshot_gui.ui.grid_delegate import CELL, CellDelegate
from fewshot_gui.ui.grid_model import ImageListModel


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
