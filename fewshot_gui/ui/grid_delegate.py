"""How a grid cell looks: thumbnail, a bar in the label's colour with the label and confidence,
and marks for the user's labels (✓), failed files and images the last action changed."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from fewshot_gui.core.types import UNKNOWN
from fewshot_gui.review import PENDING, UNKNOWN_COLOR, ReviewModel
from fewshot_gui.ui.grid_model import ImageListModel

CELL = 140
THUMB = 108
"""Thumbnail size that fits a cell unscaled (drawn 1:1: no scaling per paint)."""
CHANGED_COLOR = "#00e5ff"
"""The badge of an image whose label the last action changed."""
SELECTED_COLOR = "#ffeb3b"
"""The same yellow as the selection rings in the embedding view."""


class CellDelegate(QStyledItemDelegate):
    """Thumbnail, a bar in the label's colour with the label and confidence, user / failed marks.

    Each cell is drawn once into a pixmap, kept (up to :attr:`capacity`) under everything it
    shows, so repainting the grid (10 times a second while labeling) costs one ``drawPixmap`` and
    a few lookups per cell. That matters: every call into Qt from Python may wait for the GIL,
    which the labeling worker's threads hold most of the time.
    """

    def __init__(self, model: ImageListModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.review: ReviewModel = model.review
        self._changed: set[int] = set()
        self._changed_of: object = None  # the array ``_changed`` was made from
        self.small = QFont()
        self.small.setPointSizeF(max(7.0, self.small.pointSizeF() - 1))
        self.capacity = 512
        self.ratio = 1.0  # device pixels per pixel: set by the view before each paint
        self._cells: OrderedDict[tuple, QPixmap] = OrderedDict()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(CELL, CELL)

    def cell(self, row: int) -> tuple | None:
        """What the cell at view ``row`` shows: ``(path, label, confidence %, user, failed,
        colour, the label before the last action changed it or "", thumbnail or None)``; None
        past the end."""
        review = self.review
        if not 0 <= row < len(review.order):
            return None
        i = int(review.order[row])
        path = review.paths[i]
        user = review.user_label(path)
        code = int(review.codes[i])
        predicted = None if code == PENDING else review.code_names[code]
        label = user if user is not None else predicted
        info = review.find(label) if label and label != UNKNOWN else None
        conf = None if code == PENDING else round(float(review.conf[i]) * 100)
        thumbnails = self.model.thumbnails
        image = thumbnails.request(path) if thumbnails is not None else None
        color = info.color if info is not None else UNKNOWN_COLOR
        if self._changed_of is not review.last_changed:
            self._changed_of = review.last_changed
            self._changed = set(review.last_changed.tolist())
        failed = review.failed.get(i)
        was = review.was_label(i) if i in self._changed else ""
        return path, label, conf, user is not None, failed, color, was, image

    def pixmap(self, row: int, selected: bool, width: int, height: int) -> QPixmap | None:
        """The cell at view ``row`` drawn at ``width`` × ``height`` (cached); None past the end."""
        cell = self.cell(row)
        if cell is None:
            return None
        image, ratio = cell[7], self.ratio
        key = (*cell[:7], None if image is None else id(image), selected, width, height, ratio)
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
        _path, label, conf, user, failed, color_name, was, image = cell
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
        if selected:
            painter.setPen(QPen(QColor(SELECTED_COLOR), 3))
            painter.drawRect(whole.adjusted(1, 1, -2, -2))
        painter.setFont(self.small)
        metrics = painter.fontMetrics()
        if was and not failed:  # "the last correction changed this one": a badge on top
            self._badge(painter, rect, f"was {was}")
        painter.setPen(QColor("white"))
        painter.drawText(
            bar.adjusted(4, 0, -4, 0),
            Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(text, Qt.TextElideMode.ElideRight, bar.width() - 8),
        )
        painter.end()
        return pixmap

    @staticmethod
    def _badge(painter: QPainter, rect: QRect, text: str) -> None:
        """``text`` in black on the "changed" colour, in the top left corner of ``rect``."""
        metrics = painter.fontMetrics()
        text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, rect.width() - 18)
        badge = QRect(rect.x() + 4, rect.y() + 4, metrics.horizontalAdvance(text) + 10, 16)
        painter.fillRect(badge, QColor(CHANGED_COLOR))
        painter.setPen(QColor("black"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
