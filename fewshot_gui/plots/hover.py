"""Hovering and clicking the embedding view: the point under the pointer (drawn points only), the
card shown beside it (its thumbnail, and under it name, label, confidence), a click's selection."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

HOVER_THUMB = 128
HOVER_PIXELS = 8.0
HOVER_OFFSET = 14
HOVER_RETRIES = 10
HOVER_RETRY_MS = 100
SMOOTH = Qt.TransformationMode.SmoothTransformation


class HoverCard(QFrame):
    """The hovered image: its thumbnail, and under it (never over it) name, label, confidence."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("hoverCard")
        self.setStyleSheet(
            "#hoverCard { background: rgba(0,0,0,215); border-radius: 4px; }"
            "QLabel { color: white; background: transparent; }"
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.image = QLabel(self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel(self)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.image)
        layout.addWidget(self.text)
        self.hide()

    def show_image(self, image: QImage | None, text: str) -> None:
        if image is not None and not image.isNull():
            side = HOVER_THUMB
            self.image.setPixmap(
                QPixmap.fromImage(image).scaled(
                    side, side, Qt.AspectRatioMode.KeepAspectRatio, SMOOTH
                )
            )
            self.image.show()
        else:
            self.image.hide()
        self.text.setText(text)
        self.adjustSize()


class HoverMixin:
    """Hover card and click selection of :class:`~fewshot_gui.plots.embedding.EmbeddingPlot`."""

    paths: list[str]
    coords: np.ndarray
    selected: np.ndarray
    drawn: np.ndarray | None
    viewbox: Any
    widget: Any
    hover: HoverCard
    thumbnail: Callable[[str], QImage | None] | None
    describe: Callable[[int], str] | None
    _hovered: int
    pointClicked: Any

    if TYPE_CHECKING:  # EmbeddingPlot's

        def _draw_selection(self) -> None: ...

    def nearest(self, scene_pos: QPointF) -> int:
        """Index of the point under ``scene_pos`` (within a few pixels), or -1."""
        if len(self.coords) != len(self.paths) or not len(self.coords):
            return -1
        if not self.viewbox.sceneBoundingRect().contains(scene_pos):
            return -1
        p = self.viewbox.mapSceneToView(scene_pos)
        px, py = self.viewbox.viewPixelSize()
        shown = self._shown()
        if not len(shown):
            return -1
        dx = (self.coords[shown, 0] - p.x()) / max(px, 1e-12)
        dy = (self.coords[shown, 1] - p.y()) / max(py, 1e-12)
        d = dx * dx + dy * dy
        best = int(np.argmin(d))
        return int(shown[best]) if d[best] <= HOVER_PIXELS**2 else -1

    def _shown(self) -> np.ndarray:
        """Indices of the points drawn: the sample and the selected ones (or all)."""
        if self.drawn is None:
            return np.arange(len(self.coords))
        if len(self.selected) != len(self.coords):
            return self.drawn
        return np.union1d(self.drawn, np.flatnonzero(self.selected))

    def _hover(self, args) -> None:
        pos = args[0]
        i = self.nearest(pos)
        if i < 0:
            self._hovered = -1
            self.hover.hide()
            return
        self._hovered = i
        self._show_hover(i, self.widget.mapFromScene(pos), HOVER_RETRIES)

    def _show_hover(self, i: int, at: QPoint, retries: int) -> None:
        if i != self._hovered or i >= len(self.paths):
            return
        path = self.paths[i]
        image = self.thumbnail(path) if self.thumbnail else None
        what = self.describe(i) if self.describe is not None else ""
        self.hover.show_image(image, f"{os.path.basename(path)}\n{what}".strip())
        self.place_hover(at)
        if image is None and retries:  # being decoded: look again shortly
            QTimer.singleShot(HOVER_RETRY_MS, self, lambda: self._show_hover(i, at, retries - 1))

    def leaveEvent(self, event) -> None:
        self._hovered = -1
        self.hover.hide()
        super().leaveEvent(event)

    def place_hover(self, at: QPoint) -> None:
        """Put the card beside the pointer (right and below, or flipped where there is no room),
        never over the hovered point."""
        card, room = self.hover, self.widget.size()
        x = at.x() + HOVER_OFFSET
        if x + card.width() > room.width():
            x = at.x() - HOVER_OFFSET - card.width()
        y = at.y() + HOVER_OFFSET
        if y + card.height() > room.height():
            y = at.y() - HOVER_OFFSET - card.height()
        card.move(max(0, x), max(0, y))
        card.show()
        card.raise_()

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        i = self.nearest(event.scenePos())
        if i >= 0:
            mask = np.zeros(len(self.paths), bool)
            mask[i] = True
            self.selected = mask
            self._draw_selection()
            self.pointClicked.emit(i)
