"""The embedding view: one reused pyqtgraph ScatterPlotItem of every image, coloured by label.

Points are tagged by their index into :attr:`EmbeddingPlot.paths`; selection is a boolean mask.
Two small overlay items (support examples, current selection) are reused the same way. Hover shows
the thumbnail and path; click selects one image; rectangle or lasso selects many. The 2-D projection
is computed off the GUI thread. No torch here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.plots.projection import (
    available_methods,
    points_in_polygon,
    points_in_rect,
    project_2d,
)

HOVER_PIXELS = 8.0


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


class _ProjectionSignals(QObject):
    done = Signal(int, object, str)
    failed = Signal(int, str)


class _ProjectionJob(QRunnable):
    def __init__(
        self, generation: int, vectors: np.ndarray, method: str, signals: _ProjectionSignals
    ) -> None:
        super().__init__()
        self.generation, self.vectors, self.method, self.signals = (
            generation,
            vectors,
            method,
            signals,
        )

    def run(self) -> None:
        try:
            coords, used = project_2d(self.vectors, self.method)
        except Exception as error:  # report, never crash the app
            with contextlib.suppress(RuntimeError):  # the window may be gone by now
                self.signals.failed.emit(self.generation, f"projection failed: {error}")
            return
        with contextlib.suppress(RuntimeError):
            self.signals.done.emit(self.generation, coords, used)


class EmbeddingPlot(QWidget):
    """Scatter of every embedded image; emits point indices (into :attr:`paths`)."""

    pointClicked = Signal(int)
    selectionMade = Signal(object)  # np.ndarray of point indices
    assignRequested = Signal(object)  # np.ndarray of point indices
    projected = Signal(str)  # method used
    message = Signal(str)

    def __init__(
        self, thumbnail: Callable[[str], QImage | None] | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.thumbnail = thumbnail
        self.paths: list[str] = []
        self.coords = np.zeros((0, 2), np.float32)
        self.vectors: np.ndarray | None = None
        self.selected = np.zeros(0, bool)
        self.support = np.zeros(0, bool)
        self.color_index = np.zeros(0, np.int64)
        self.palette: list[str] = []
        self._generation = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _ProjectionSignals()
        self._signals.done.connect(self._projection_done)
        self._signals.failed.connect(
            lambda g, msg: g == self._generation and self.message.emit(msg)
        )

        self.viewbox = SelectViewBox()
        self.widget = pg.PlotWidget(viewBox=self.viewbox, background="#1e1e1e")
        self.widget.hideAxis("left")
        self.widget.hideAxis("bottom")
        self.scatter = pg.ScatterPlotItem(pxMode=True, size=7, pen=None, symbol="o")
        self.support_item = pg.ScatterPlotItem(
            pxMode=True, size=16, symbol="star", pen=pg.mkPen("w", width=1)
        )
        self.selection_item = pg.ScatterPlotItem(
            pxMode=True, size=11, symbol="o", pen=pg.mkPen("#ffeb3b", width=2), brush=None
        )
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
        bar.addWidget(QLabel("Embedding"))
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
        self.count = QLabel("", self)
        bar.addWidget(self.count, 1)
        self.assign_button = QPushButton("Assign class…", self)
        self.assign_button.setEnabled(False)
        self.assign_button.clicked.connect(
            lambda: self.assignRequested.emit(np.flatnonzero(self.selected))
        )
        bar.addWidget(self.assign_button)
        self.hover = QLabel(self.widget)
        self.hover.setStyleSheet(
            "background:rgba(0,0,0,200); color:white; padding:4px; border-radius:4px;"
        )
        self.hover.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hover.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.widget, 1)

    # ------------------------------------------------------------------ data
    def set_mode(self, mode: str) -> None:
        self.viewbox.mode = mode
        for button in self.tools.buttons():
            button.setChecked(
                button.toolTip().startswith({"pan": "pan", "rect": "rect", "lasso": "lasso"}[mode])
            )

    def set_embeddings(self, paths: Sequence[str], vectors: np.ndarray) -> None:
        """New points: keeps colours by path where possible; projects in the background."""
        self.paths = list(paths)
        self.vectors = np.asarray(vectors, np.float32)
        n = len(self.paths)
        self.selected = np.zeros(n, bool)
        self.support = np.zeros(n, bool)
        self.color_index = np.zeros(n, np.int64)
        self.reproject()

    def reproject(self) -> None:
        if self.vectors is None or len(self.vectors) == 0:
            return
        self._generation += 1
        self.count.setText(f"{len(self.paths):,} images · projecting…")
        self._pool.start(
            _ProjectionJob(
                self._generation, self.vectors, self.method_box.currentText(), self._signals
            )
        )

    def wait(self, msecs: int = 10000) -> bool:
        return self._pool.waitForDone(msecs)

    def _projection_done(self, generation: int, coords: np.ndarray, used: str) -> None:
        if generation != self._generation or len(coords) != len(self.paths):
            return
        self.coords = coords
        if used != self.method_box.currentText():
            self.message.emit(
                f"{self.method_box.currentText()} is not available for "
                f"{len(coords):,} points here; showing PCA"
            )
        self.redraw()
        self.viewbox.autoRange()
        self.projected.emit(used)

    def set_colors(
        self, color_index: np.ndarray, palette: Sequence[str], support: np.ndarray | None = None
    ) -> None:
        """``color_index (N,)`` into ``palette`` (``#rrggbb``); ``support (N,)`` marks examples."""
        if len(color_index) != len(self.paths):
            return
        self.color_index = np.asarray(color_index, np.int64)
        self.palette = list(palette)
        if support is not None:
            self.support = np.asarray(support, bool)
        self.redraw()

    def redraw(self) -> None:
        n = len(self.paths)
        if len(self.coords) != n:
            return
        x, y = self.coords[:, 0], self.coords[:, 1]
        brushes = np.array(
            [QBrush(QColor(c)) for c in (self.palette or ["#9e9e9e"])]
            + [QBrush(QColor("#9e9e9e"))],
            dtype=object,
        )
        idx = (
            np.where(
                (self.color_index >= 0) & (self.color_index < len(self.palette)),
                self.color_index,
                len(brushes) - 1,
            )
            if n
            else self.color_index
        )
        b = brushes[idx] if n else []
        self.scatter.setData(x=x, y=y, brush=b, data=np.arange(n))
        sup = np.flatnonzero(self.support) if len(self.support) == n else np.zeros(0, int)
        self.support_item.setData(x=x[sup], y=y[sup], brush=brushes[idx[sup]] if len(sup) else [])
        self._draw_selection()
        self.count.setText(f"{n:,} images · {int(self.selected.sum()):,} selected")

    def _draw_selection(self) -> None:
        sel = np.flatnonzero(self.selected) if len(self.selected) == len(self.coords) else []
        self.selection_item.setData(
            x=self.coords[sel, 0] if len(sel) else [], y=self.coords[sel, 1] if len(sel) else []
        )
        self.assign_button.setEnabled(bool(len(sel)))
        self.count.setText(f"{len(self.paths):,} images · {len(sel):,} selected")

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
            self.hover.hide()
            return
        path = self.paths[i]
        image = self.thumbnail(path) if self.thumbnail else None
        if image is not None and not image.isNull():
            pix = QPixmap.fromImage(image).scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio)
            self.hover.setPixmap(pix)
            self.hover.setToolTip(path)
        else:
            self.hover.setText(path)
        self.hover.adjustSize()
        view_pos = self.widget.mapFromScene(pos)
        self.hover.move(
            min(view_pos.x() + 12, max(0, self.widget.width() - self.hover.width())),
            min(view_pos.y() + 12, max(0, self.widget.height() - self.hover.height())),
        )
        self.hover.show()
        self.hover.raise_()
        self.widget.setToolTip(path)

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
