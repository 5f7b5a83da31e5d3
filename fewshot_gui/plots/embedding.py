"""The embedding view: every image as a point, coloured by label; a representative sample of them
drawn, and every selected one.

Points are indices into :attr:`EmbeddingPlot.paths`; selection is a boolean mask. The points and
the selection rings are :class:`~fewshot_gui.plots.points_item.PointsItem` s (one sprite per
colour, stamped with numpy-built fragments: updating 100,000 points costs milliseconds, where a
ScatterPlotItem spends ~0.5 s of per-point Python); the images the user labeled are a small
ScatterPlotItem of stars. Above :data:`MAX_DRAWN` points (a labeling result of a million images)
every point still has its place, but only a sample stratified by colour is drawn, plus every
selected point: a lasso or rectangle selects among all of them, and a selection made in the grid
shows wherever its images lie. Hover shows a card (:mod:`~fewshot_gui.plots.hover`); click selects
one image; rectangle or lasso selects many, and "Only these in the grid" filters the grid to them.
A legend under the plot names the colours. The 2-D projection is computed off the GUI thread (one
pool job at a time); new points replace the old ones only when their projection is ready, with PCA
axes kept pointing the same way, so the view can update while a folder is labeled. No torch, no
workers here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage
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

from fewshot_gui.plots.hover import HoverCard, HoverMixin
from fewshot_gui.plots.points_item import PointsItem
from fewshot_gui.plots.projection import (
    align_axes,
    available_methods,
    points_in_polygon,
    points_in_rect,
    project_2d,
    representative,
    y_order_of,
)
from fewshot_gui.plots.select_box import SelectViewBox
from fewshot_gui.qt import qtfix as _qtfix  # noqa: F401  (see qtfix.py)
from fewshot_gui.qt.pool import PoolRunner

BACKGROUND = "#1e1e1e"
POINT_PX = 7.0
RING_PX = 13.0  # a selected point: a yellow ring, a gap, then the point
GAP_PX = 9.0
SELECTION_COLOR = "#ffeb3b"
UNLABELED_COLOR = "#9e9e9e"
MAX_DRAWN = 20_000
"""Points drawn at most (besides the selected ones): a sample stratified by colour beyond …"""
MIN_PER_COLOUR = 50
"""… with at least this many points of each colour (or all it has)."""
SAME_CHECK = 10_000_000
"""Embeddings of more values than this are not compared value by value (a view of the same
buffer, with the same shape, is the same)."""


def _project(vectors: np.ndarray, method: str) -> tuple[np.ndarray, str, np.ndarray]:
    """In the pool: coordinates, the method used, and the points' order by y (for lassos)."""
    coords, used = project_2d(vectors, method)
    return coords, used, y_order_of(coords)


def _same_array(a: np.ndarray, b: np.ndarray | None) -> bool:
    if b is None or a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a is b or (
        a.__array_interface__["data"] == b.__array_interface__["data"] and a.strides == b.strides
    ):
        return True
    return a.size <= SAME_CHECK and np.array_equal(a, b)


class EmbeddingPlot(HoverMixin, QWidget):
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
        self.drawn: np.ndarray | None = None  # points drawn besides the selected; None: all
        self._y_order = np.zeros(0, np.int64)  # points by y, for lassos
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None  # of every point
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
            self._next is None and _same_array(vectors, self.vectors) and list(paths) == self.paths
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
        self.drawn, self._y_order = None, np.zeros(0, np.int64)
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
        self._runner.submit(lambda: _project(vectors, method), self._generation)

    def wait(self, msecs: int = 10000) -> bool:
        return self._runner.wait(msecs)

    def _projection_failed(self, generation: int, text: str) -> None:
        if generation == self._generation:
            self._done_generation = generation
            self.message.emit(f"projection failed: {text}")

    def _projection_done(
        self, generation: int, projected: tuple[np.ndarray, str, np.ndarray]
    ) -> None:
        coords, used, y_order = projected
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
        self._y_order = y_order
        self._bounds = (coords.min(axis=0), coords.max(axis=0)) if len(coords) else None
        self.color_index = np.full(len(paths), -1, np.int64)
        self.support = np.zeros(len(paths), bool)
        self.drawn = self._representative()
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
        color_index = np.asarray(color_index, np.int64)
        recoloured = not np.array_equal(color_index, self.color_index)
        self.color_index = color_index
        self.palette = list(palette)
        if support is not None:
            self.support = np.asarray(support, bool)
        if recoloured:
            self.drawn = self._representative()
        self.redraw()

    def _representative(self) -> np.ndarray | None:
        """The points to draw besides the selected ones: all (None) up to :data:`MAX_DRAWN`, else
        a sample stratified by colour (the same sample while the colours stay)."""
        if len(self.paths) <= MAX_DRAWN:
            return None
        return representative(self.color_index, MAX_DRAWN, MIN_PER_COLOUR)

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
        """The ``points`` (indices) as one group per colour (one pass: a radix sort by colour)."""
        colors, idx = self._colors()
        idx = idx[points]
        by_colour = points[np.argsort(idx.astype(np.int16), kind="stable")]
        ends = np.cumsum(np.bincount(idx, minlength=len(colors)))
        starts = ends - np.bincount(idx, minlength=len(colors))
        return [
            (color, diameter, self.coords[by_colour[starts[k] : ends[k]]])
            for k, color in enumerate(colors)
            if ends[k] > starts[k]
        ]

    def redraw(self) -> None:
        n = len(self.paths)
        if len(self.coords) != n or len(self.color_index) != n:
            return
        drawn = np.arange(n) if self.drawn is None else self.drawn
        self.scatter.set_groups(self._groups(drawn, POINT_PX))
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
        groups = rings + (self._groups(sel, POINT_PX) if len(sel) else [])
        self.selection_item.set_groups(groups, self._bounds if len(sel) > MAX_DRAWN else None)
        self.assign_button.setEnabled(bool(len(sel)))
        self.only_button.setEnabled(bool(len(sel)) or self.only_button.isChecked())
        text = f"{len(self.paths):,} images · {len(sel):,} selected"
        if self.drawn is not None:
            text += f" · {len(self.drawn):,} of the others drawn"
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
            order = self._y_order if len(self._y_order) == len(self.coords) else None
            mask = points_in_polygon(self.coords, polygon[::step], order)
        add = bool(
            modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier)
        )
        self.select_mask(mask, add)
