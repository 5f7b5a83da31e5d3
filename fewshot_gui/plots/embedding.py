"""The embedding view: one reused item drawing every image as a point, coloured by label.

Points are indices into :attr:`EmbeddingPlot.paths`; selection is a boolean mask. The points and
the selection rings are :class:`PointsItem` s (one sprite per colour, stamped with numpy-built
fragments: updating 100,000 points costs milliseconds, where a ScatterPlotItem spends ~0.5 s of
per-point Python); the images the user labeled are a small ScatterPlotItem of stars. Hover
shows a card (thumbnail above the file name, label and confidence: nothing covers the
thumbnail); click selects one image; rectangle or lasso selects many, and "Only these in the
grid" filters the grid to them. A legend under the plot names the colours. The 2-D projection
is computed off the GUI thread (one pool job at a time); new points replace the old ones only
when their projection is ready, with PCA axes kept pointing the same way, so the view can update
while a folder is labeled. No torch, no workers here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from html import escape

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import (
    QPoint,
    QPointF,
    QRectF,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.plots.projection import (
    align_axes,
    available_methods,
    points_in_polygon,
    points_in_rect,
    project_2d,
)
from fewshot_gui.qt import qtfix as _qtfix  # noqa: F401  (see qtfix.py)
from fewshot_gui.qt.pool import PoolRunner

HOVER_PIXELS = 8.0
HOVER_THUMB = 128
HOVER_OFFSET = 14
HOVER_RETRIES = 10
HOVER_RETRY_MS = 100
SMOOTH = Qt.TransformationMode.SmoothTransformation
BACKGROUND = "#1e1e1e"
POINT_PX = 7.0
RING_PX = 13.0  # a selected point: a yellow ring, a gap, then the point
GAP_PX = 9.0
SELECTION_COLOR = "#ffeb3b"
UNLABELED_COLOR = "#9e9e9e"


class PointsItem(pg.GraphicsObject):
    """Groups of same-coloured discs of a fixed size in screen pixels: each group is one sprite
    stamped at every point by one ``drawPixmapFragments`` call; no per-point objects or Python.

    Points are mapped to the screen with numpy on each paint (and culled to what is exposed), so
    updating or drawing 100,000 points takes milliseconds.
    """

    def __init__(self) -> None:
        super().__init__()
        self._groups: list[tuple[str, float, np.ndarray]] = []
        self._sprites: dict[tuple[str, float, float], QPixmap] = {}
        self._low: np.ndarray | None = None  # (2,) data minimum, or None when empty
        self._high: np.ndarray | None = None
        self._pad = 0.0  # half the largest disc, in pixels

    def set_groups(self, groups: Sequence[tuple[str, float, np.ndarray]]) -> None:
        """``(colour, diameter in pixels, points (N, 2))`` per group, drawn in this order."""
        self.prepareGeometryChange()
        self._groups = []
        for color, diameter, points in groups:
            xy = np.asarray(points, np.float64).reshape(-1, 2)
            if len(xy):
                self._groups.append((color, float(diameter), xy))
        if self._groups:
            every = np.concatenate([xy for _, _, xy in self._groups])
            self._low, self._high = every.min(axis=0), every.max(axis=0)
            self._pad = max(d for _, d, _ in self._groups) / 2
        else:
            self._low = self._high = None
        self.update()

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None) -> tuple:
        """Data range along axis ``ax`` (for the view's auto-range)."""
        if self._low is None or self._high is None:
            return (None, None)
        return (float(self._low[ax]), float(self._high[ax]))

    def pixelPadding(self) -> float:
        return self._pad

    def boundingRect(self) -> QRectF:
        if self._low is None or self._high is None:
            return QRectF()
        px, py = self.pixelVectors()
        pad_x = 0.0 if px is None else px.length() * self._pad
        pad_y = 0.0 if py is None else py.length() * self._pad
        (x0, y0), (x1, y1) = self._low, self._high
        return QRectF(x0 - pad_x, y0 - pad_y, x1 - x0 + 2 * pad_x, y1 - y0 + 2 * pad_y)

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()  # the pixel padding is a different data size now
        super().viewTransformChanged()

    def _sprite(self, color: str, diameter: float, ratio: float) -> QPixmap:
        key = (color, diameter, ratio)
        sprite = self._sprites.get(key)
        if sprite is None:
            side = int(np.ceil(diameter * ratio)) + 2
            sprite = QPixmap(side, side)
            sprite.fill(Qt.GlobalColor.transparent)
            painter = QPainter(sprite)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(color))
            painter.drawEllipse(QRectF(1, 1, diameter * ratio, diameter * ratio))
            painter.end()
            self._sprites[key] = sprite
        return sprite

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if not self._groups:
            return
        ratio = widget.devicePixelRatioF() if widget is not None else 1.0
        t = painter.transform()
        m11, m12, m21, m22, dx, dy = t.m11(), t.m12(), t.m21(), t.m22(), t.dx(), t.dy()
        if widget is not None:
            visible = np.array([widget.width(), widget.height()], np.float64)
        else:
            visible = np.array([np.inf, np.inf])
        painter.resetTransform()
        for color, diameter, xy in self._groups:
            sx = xy[:, 0] * m11 + xy[:, 1] * m21 + dx
            sy = xy[:, 0] * m12 + xy[:, 1] * m22 + dy
            r = diameter / 2 + 1
            keep = (sx > -r) & (sy > -r) & (sx < visible[0] + r) & (sy < visible[1] + r)
            n = int(keep.sum())
            if not n:
                continue
            sprite = self._sprite(color, diameter, ratio)
            side = sprite.width()
            # QPainter::PixmapFragment: x, y (centre), source left, top, width, height,
            # scale x, scale y, rotation, opacity: ten qreals
            fragments = np.empty((n, 10), np.float64)
            fragments[:, 0] = sx[keep]
            fragments[:, 1] = sy[keep]
            fragments[:, 2:] = (0.0, 0.0, side, side, 1 / ratio, 1 / ratio, 0.0, 1.0)
            first = shiboken6.wrapInstance(fragments.ctypes.data, QPainter.PixmapFragment)
            painter.drawPixmapFragments(first, n, sprite)
        painter.setTransform(t)


class SelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a rectangle or lasso instead of panning (per ``mode``)."""

    regionSelected = Signal(str, object, object)  # mode, (M, 2) polygon in data coords, modifiers

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mode = "pan"
        self._path: list[tuple[float, float]] = []
        self.outline = pg.PlotCurveItem(
            pen=pg.mkPen("#ffeb3b", width=1.5, style=Qt.PenStyle.DashLine)
        )
        self.addItem(self.outline, ignoreBounds=True)
        self.outline.setZValue(1000)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if self.mode == "pan" or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        p = self.mapToView(ev.pos())
        if ev.isStart():
            start = self.mapToView(ev.buttonDownPos())
            self._path = [(start.x(), start.y())]
        self._path.append((p.x(), p.y()))
        self._draw()
        if ev.isFinish():
            polygon = np.asarray(self._path, np.float64)
            self._path = []
            self.outline.setData([], [])
            self.regionSelected.emit(self.mode, polygon, ev.modifiers())

    def _draw(self) -> None:
        if self.mode == "rect":
            (x0, y0), (x1, y1) = self._path[0], self._path[-1]
            xs, ys = [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]
        else:
            xs = [p[0] for p in self._path] + [self._path[0][0]]
            ys = [p[1] for p in self._path] + [self._path[0][1]]
        self.outline.setData(xs, ys)


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


class EmbeddingPlot(QWidget):
    """Scatter of every embedded image; emits point indices (into :attr:`paths`).

    ``describe(i) -> str`` (set by the app) words point ``i``'s label and confidence for the
    hover card; ``projected`` says new points (and coordinates) are in place.
    """

    pointClicked = Signal(int)
    selectionMade = Signal(object)  # np.ndarray of point indices
    assignRequested = Signal(object)  # np.ndarray of point indices
    selectionOnly = Signal(bool)  # "only these in the grid" toggled
    projected = Signal(str)  # method used
    message = Signal(str)

    def __init__(
        self, thumbnail: Callable[[str], QImage | None] | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.thumbnail = thumbnail
        self.describe: Callable[[int], str] | None = None
        self.paths: list[str] = []
        self.coords = np.zeros((0, 2), np.float32)
        self.vectors: np.ndarray | None = None
        self._next: tuple[list[str], np.ndarray] | None = None  # points waiting for coordinates
        self.selected = np.zeros(0, bool)
        self.support = np.zeros(0, bool)
        self.color_index = np.zeros(0, np.int64)
        self.palette: list[str] = []
        self._generation = 0
        self._done_generation = 0
        self._runner = PoolRunner(1, self)  # one projection at a time
        self._runner.done.connect(self._projection_done)
        self._runner.failed.connect(self._projection_failed)

        self.viewbox = SelectViewBox()
        self._user_range = False  # the user zoomed or panned: new points keep the view
        self.viewbox.sigRangeChangedManually.connect(self._range_moved)
        self.widget = pg.PlotWidget(viewBox=self.viewbox, background=BACKGROUND)
        self.widget.hideAxis("left")
        self.widget.hideAxis("bottom")
        self.scatter = PointsItem()
        self.support_item = pg.ScatterPlotItem(
            pxMode=True, size=16, symbol="star", pen=pg.mkPen("w", width=1)
        )
        self.selection_item = PointsItem()  # rings: yellow, background, then the point on top
        for item in (self.scatter, self.selection_item, self.support_item):
            self.viewbox.addItem(item)
        self.viewbox.regionSelected.connect(self._region_selected)
        scene = self.widget.scene()
        self._hover_proxy = pg.SignalProxy(scene.sigMouseMoved, rateLimit=30, slot=self._hover)
        scene.sigMouseClicked.connect(self._clicked)

        self.method_box = QComboBox(self)
        self.method_box.addItems(available_methods())
        self.method_box.currentTextChanged.connect(lambda _m: self.reproject())
        self.tools = QButtonGroup(self)
        bar = QHBoxLayout()
        bar.addWidget(self.method_box)
        for mode, text, tip in (
            ("pan", "Pan", "pan and zoom; click a point to select it"),
            ("rect", "Rectangle", "rectangle selection (Shift adds)"),
            ("lasso", "Lasso", "lasso selection (Shift adds)"),
        ):
            button = QToolButton(self)
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setChecked(mode == "pan")
            button.clicked.connect(lambda _=False, m=mode: self.set_mode(m))
            self.tools.addButton(button)
            bar.addWidget(button)
        bar.addStretch(1)
        selection_bar = QHBoxLayout()  # a row of its own: nothing elided at 440 px
        self.count = QLabel("", self)
        selection_bar.addWidget(self.count, 1)
        self.only_button = QToolButton(self)
        self.only_button.setText("Only these in the grid")
        self.only_button.setToolTip("Show only the selected images in the grid")
        self.only_button.setCheckable(True)
        self.only_button.setEnabled(False)
        self.only_button.toggled.connect(self.selectionOnly.emit)
        selection_bar.addWidget(self.only_button)
        self.assign_button = QPushButton("Assign class…", self)
        self.assign_button.setEnabled(False)
        self.assign_button.clicked.connect(
            lambda: self.assignRequested.emit(np.flatnonzero(self.selected))
        )
        selection_bar.addWidget(self.assign_button)
        self.legend = QLabel(self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.hover = HoverCard(self.widget)
        self._hovered = -1
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(selection_bar)
        layout.addWidget(self.widget, 1)
        layout.addWidget(self.legend)
        self.set_legend([], [])

    # ------------------------------------------------------------------ data
    def set_mode(self, mode: str) -> None:
        self.viewbox.mode = mode
        for button in self.tools.buttons():
            button.setChecked(
                button.toolTip().startswith({"pan": "pan", "rect": "rect", "lasso": "lasso"}[mode])
            )

    def set_embeddings(self, paths: Sequence[str], vectors: np.ndarray) -> None:
        """New points, shown once projected (in the background); the same points again (after a
        re-label) are not projected again."""
        vectors = np.asarray(vectors, np.float32)
        same = (
            self._next is None
            and list(paths) == self.paths
            and self.vectors is not None
            and np.array_equal(vectors, self.vectors)
        )
        if same:
            return
        self._next = (list(paths), vectors)
        self.reproject()

    def clear_points(self) -> None:
        """No points (another folder is being labeled); a projection in flight is dropped."""
        self._generation += 1
        self._done_generation = self._generation
        self._next, self.vectors = None, None
        self.paths, self.coords = [], np.zeros((0, 2), np.float32)
        self.selected = np.zeros(0, bool)
        self.support = np.zeros(0, bool)
        self.color_index = np.zeros(0, np.int64)
        self.hover.hide()
        self.redraw()

    @property
    def projecting(self) -> bool:
        """A projection is computing (its points are not shown yet)."""
        return self._done_generation != self._generation

    def reproject(self) -> None:
        paths, vectors = self._next if self._next is not None else (self.paths, self.vectors)
        if vectors is None or len(vectors) == 0:
            return
        self._generation += 1
        self._next = (paths, vectors)
        self.count.setText(f"{len(paths):,} images · projecting…")
        method = self.method_box.currentText()
        self._runner.submit(lambda: project_2d(vectors, method), self._generation)

    def wait(self, msecs: int = 10000) -> bool:
        return self._runner.wait(msecs)

    def _projection_failed(self, generation: int, text: str) -> None:
        if generation == self._generation:
            self._done_generation = generation
            self.message.emit(f"projection failed: {text}")

    def _projection_done(self, generation: int, projected: tuple[np.ndarray, str]) -> None:
        coords, used = projected
        if generation != self._generation or self._next is None:
            return
        paths, vectors = self._next
        if len(coords) != len(paths):
            return
        self._next, self._done_generation = None, generation
        if self.paths and len(self.coords) == len(self.paths):  # keep the picture's orientation
            coords = align_axes(coords, paths, self.coords, self.paths)
        self.selected = self._selection_for(paths)
        self.paths, self.vectors, self.coords = paths, vectors, coords
        self.color_index = np.full(len(paths), -1, np.int64)
        self.support = np.zeros(len(paths), bool)
        if used != self.method_box.currentText():
            self.message.emit(
                f"{self.method_box.currentText()} is not available for "
                f"{len(coords):,} points here; showing PCA"
            )
        self.redraw()
        if not self._user_range or any(self.viewbox.autoRangeEnabled()):  # or "A" clicked
            self._user_range = False
            self.viewbox.autoRange()
        self.projected.emit(used)

    def _range_moved(self, *_args) -> None:
        self._user_range = True

    def _selection_for(self, paths: list[str]) -> np.ndarray:
        """The current selection as a mask over new points ``paths``."""
        selected = np.zeros(len(paths), bool)
        m = len(self.selected)
        if m == len(self.paths) and m <= len(paths) and paths[:m] == self.paths:
            selected[:m] = self.selected  # the folder grew: same points first
        elif self.selected.any():
            chosen = {self.paths[i] for i in np.flatnonzero(self.selected)}
            selected[[k for k, p in enumerate(paths) if p in chosen]] = True
        return selected

    def set_colors(
        self, color_index: np.ndarray, palette: Sequence[str], support: np.ndarray | None = None
    ) -> None:
        """``color_index (N,)`` into ``palette`` (``#rrggbb``); ``support (N,)`` marks the images
        the user labeled."""
        if len(color_index) != len(self.paths):
            return
        self.color_index = np.asarray(color_index, np.int64)
        self.palette = list(palette)
        if support is not None:
            self.support = np.asarray(support, bool)
        self.redraw()

    def set_legend(self, names: Sequence[str], colors: Sequence[str]) -> None:
        """Name the colours: one entry per class, unlabeled points, and the stars."""
        entries = [
            f'<span style="color:{c}">●</span>&nbsp;{escape(n)}'
            for n, c in zip(names, colors, strict=True)
        ]
        entries.append(f'<span style="color:{UNLABELED_COLOR}">●</span>&nbsp;no label')
        entries.append("★&nbsp;your labels")
        self.legend.setText(" &nbsp; ".join(entries))

    def _colors(self) -> tuple[list[str], np.ndarray]:
        """Colours (the palette, then grey for unlabeled) and each point's index into them."""
        colors = [*self.palette, UNLABELED_COLOR]
        valid = (self.color_index >= 0) & (self.color_index < len(self.palette))
        return colors, np.where(valid, self.color_index, len(colors) - 1)

    def _groups(self, points: np.ndarray, diameter: float) -> list[tuple[str, float, np.ndarray]]:
        """The ``points`` (indices) as one group per colour."""
        colors, idx = self._colors()
        idx = idx[points]
        return [
            (color, diameter, self.coords[points[idx == k]])
            for k, color in enumerate(colors)
            if np.any(idx == k)
        ]

    def redraw(self) -> None:
        n = len(self.paths)
        if len(self.coords) != n or len(self.color_index) != n:
            return
        self.scatter.set_groups(self._groups(np.arange(n), POINT_PX))
        sup = np.flatnonzero(self.support) if len(self.support) == n else np.zeros(0, np.int64)
        colors, idx = self._colors()
        brushes = [QBrush(QColor(c)) for c in colors]
        self.support_item.setData(
            x=self.coords[sup, 0], y=self.coords[sup, 1], brush=[brushes[k] for k in idx[sup]]
        )
        self._draw_selection()

    def _draw_selection(self) -> None:
        n = len(self.coords)
        sel = np.flatnonzero(self.selected) if len(self.selected) == n == len(self.paths) else []
        sel = np.asarray(sel, np.int64)
        rings = (
            [(SELECTION_COLOR, RING_PX, self.coords[sel]), (BACKGROUND, GAP_PX, self.coords[sel])]
            if len(sel)
            else []
        )
        self.selection_item.set_groups(rings + (self._groups(sel, POINT_PX) if len(sel) else []))
        self.assign_button.setEnabled(bool(len(sel)))
        self.only_button.setEnabled(bool(len(sel)) or self.only_button.isChecked())
        text = f"{len(self.paths):,} images · {len(sel):,} selected"
        self.count.setText(text + (" · projecting…" if self.projecting else ""))

    def set_selection(self, indices: Sequence[int] | np.ndarray) -> None:
        """Highlight points (from the grid) without emitting."""
        mask = np.zeros(len(self.paths), bool)
        idx = np.asarray(indices, np.int64)
        mask[idx[(idx >= 0) & (idx < len(mask))]] = True
        self.selected = mask
        self._draw_selection()

    def select_mask(self, mask: np.ndarray, add: bool = False) -> None:
        """Select by boolean mask (as a lasso does) and tell the grid."""
        mask = np.asarray(mask, bool)
        self.selected = (self.selected | mask) if add and len(self.selected) == len(mask) else mask
        self._draw_selection()
        self.selectionMade.emit(np.flatnonzero(self.selected))

    # ------------------------------------------------------------------ interaction
    def _region_selected(self, mode: str, polygon: np.ndarray, modifiers) -> None:
        if len(self.coords) == 0:
            return
        if mode == "rect":
            (x0, y0), (x1, y1) = polygon[0], polygon[-1]
            mask = points_in_rect(self.coords, x0, y0, x1, y1)
        else:
            step = max(1, len(polygon) // 200)  # a simpler outline keeps 100,000 points quick
            mask = points_in_polygon(self.coords, polygon[::step])
        add = bool(
            modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier)
        )
        self.select_mask(mask, add)

    def nearest(self, scene_pos: QPointF) -> int:
        """Index of the point under ``scene_pos`` (within a few pixels), or -1."""
        if len(self.coords) != len(self.paths) or not len(self.coords):
            return -1
        if not self.viewbox.sceneBoundingRect().contains(scene_pos):
            return -1
        p = self.viewbox.mapSceneToView(scene_pos)
        px, py = self.viewbox.viewPixelSize()
        dx = (self.coords[:, 0] - p.x()) / max(px, 1e-12)
        dy = (self.coords[:, 1] - p.y()) / max(py, 1e-12)
        d = dx * dx + dy * dy
        best = int(np.argmin(d))
        return best if d[best] <= HOVER_PIXELS**2 else -1

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
