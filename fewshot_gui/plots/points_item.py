"""Discs of one size in screen pixels, many at once: the embedding view's points and rings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap

DEDUPE_OVER = 50_000
"""A group of more visible discs than this is stamped once per pixel."""


class PointsItem(pg.GraphicsObject):
    """Groups of same-coloured discs of a fixed size in screen pixels: each group is one sprite
    stamped at every point by one ``drawPixmapFragments`` call; no per-point objects or Python.

    Points are mapped to the screen with numpy on each paint (and culled to what is exposed; more
    than :data:`DEDUPE_OVER` are reduced to one per pixel), so updating or drawing 100,000 points
    takes milliseconds, and a million selected points well under a second.
    """

    def __init__(self) -> None:
        super().__init__()
        self._groups: list[tuple[str, float, np.ndarray]] = []
        self._sprites: dict[tuple[str, float, float], QPixmap] = {}
        self._low: np.ndarray | None = None  # (2,) data minimum, or None when empty
        self._high: np.ndarray | None = None
        self._pad = 0.0  # half the largest disc, in pixels

    def set_groups(
        self,
        groups: Sequence[tuple[str, float, np.ndarray]],
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """``(colour, diameter in pixels, points (N, 2))`` per group, drawn in this order;
        ``bounds``: (low (2,), high (2,)) of the points when known (spares a pass over them)."""
        self.prepareGeometryChange()
        self._groups = []
        for color, diameter, points in groups:
            xy = np.asarray(points, np.float64).reshape(-1, 2)
            if len(xy):
                self._groups.append((color, float(diameter), xy))
        if self._groups:
            if bounds is None:
                every = np.concatenate([xy for _, _, xy in self._groups])
                bounds = every.min(axis=0), every.max(axis=0)
            self._low, self._high = bounds
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
            sx, sy = sx[keep], sy[keep]
            if len(sx) > DEDUPE_OVER:  # one disc per pixel: stamping more looks the same
                sx, sy = _one_per_pixel(sx, sy, r)
            n = len(sx)
            if not n:
                continue
            sprite = self._sprite(color, diameter, ratio)
            side = sprite.width()
            # QPainter::PixmapFragment: x, y (centre), source left, top, width, height,
            # scale x, scale y, rotation, opacity: ten qreals
            fragments = np.empty((n, 10), np.float64)
            fragments[:, 0] = sx
            fragments[:, 1] = sy
            fragments[:, 2:] = (0.0, 0.0, side, side, 1 / ratio, 1 / ratio, 0.0, 1.0)
            first = shiboken6.wrapInstance(fragments.ctypes.data, QPainter.PixmapFragment)
            painter.drawPixmapFragments(first, n, sprite)
        painter.setTransform(t)


def _one_per_pixel(sx: np.ndarray, sy: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The pixels (centres) that points ``(sx, sy)`` fall on, each once: an occupancy grid,
    O(points + pixels), no sort."""
    left, top = np.floor(sx.min()), np.floor(sy.min())
    ix = (sx - left).astype(np.int64)
    iy = (sy - top).astype(np.int64)
    width = int(ix.max()) + 1
    occupied = np.zeros(width * (int(iy.max()) + 1), bool)
    occupied[iy * width + ix] = True
    cells = np.flatnonzero(occupied)
    return left + cells % width + 0.5, top + cells // width + 0.5
