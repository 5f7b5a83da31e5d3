"""The embedding view's ViewBox: left-drag pans, or draws a rectangle or lasso selection."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal


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
