"""The review loop in the app: grid, embedding view and one-at-a-time review on one review model.

Connects the views' intents to undoable commands (labels and examples), keeps the grid's and the
plot's selections in step through the review model, recolours the plot, keeps the embedding view
up to date while a folder is labeled (asking for embeddings at most every
:data:`LIVE_PLOT_MS`, one projection at a time) and after Stop, and says what each correction
changed. No torch and no workers here: embeddings are asked for through a callable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QMenu

from fewshot_gui.review import ReviewModel
from fewshot_gui.ui import commands
from fewshot_gui.ui.main_window import MainWindow
from fewshot_gui.ui.review_mode import ImageSource, ReviewMode
from fewshot_gui.ui.state import LabelState, subscribe

if TYPE_CHECKING:
    from fewshot_gui.plots.embedding import EmbeddingPlot

LIVE_PLOT_MS = 1500
"""While labeling, the embedding view is refreshed at most this often (ms) …"""
LIVE_PLOT_GROWTH = 1.25
"""… and only once the folder has grown by this factor since the last refresh (so 100,000
images are projected ~30 times in all, not every few seconds)."""
RECOLOR_MS = 250
GRID_MARKS = 20_000
"""A plot selection of more images than this is not marked in the grid (scattered over a million
rows, marking them costs seconds, and every repaint of the grid pays for them again); the plot
shows it, and "Only these in the grid" lists it."""


class ReviewController(QObject):
    """Wires the grid, the plot and the review mode to the review model and the undo stack."""

    def __init__(
        self,
        window: MainWindow,
        state: LabelState,
        push: Callable[[Any], None],
        request_embeddings: Callable[[], None],
        images: ImageSource,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.window, self.state, self.push = window, state, push
        self.review: ReviewModel = state.review
        self.request_embeddings = request_embeddings
        self.images = images
        self.review_mode: ReviewMode | None = None
        self._plot_data: tuple[list, np.ndarray] | None = None  # for a view not built yet
        self._asked_at = -1e9
        self._asked_count = 0
        self._asked = False  # embeddings asked for and not arrived yet
        self._recolor_timer = QTimer(self)
        self._recolor_timer.setSingleShot(True)
        self._recolor_timer.setInterval(RECOLOR_MS)
        self._recolor_timer.timeout.connect(self.recolor_plot)
        self._stopped = False
        grid, r = window.grid, self.review
        grid.labelRequested.connect(self.label_paths)
        grid.exampleRequested.connect(self.add_examples)
        grid.selectionChangedBase.connect(lambda base: r.select(base, "grid"))
        grid.reviewModeRequested.connect(self.open_review_mode)
        grid.viewChanged.connect(self._view_changed)
        for event, callback in (
            (r.selection_changed, self._selection_changed),
            (r.rows_changed, lambda _base: self.recolor_soon()),
            (r.classes_changed, self._classes_changed),
            (r.points_changed, self.recolor_soon),
            (r.review_changed, self._say_what_changed),
        ):
            subscribe(event, window, callback)
        self._said_actions = 0

    # ------------------------------------------------------------------ labels and examples
    def label_paths(self, paths: Sequence[str], label: str | None) -> None:
        """A correction (keys, menu, drag onto a class, lasso): the user's label, one undo step."""
        self.push(commands.LabelImages(self.state, list(paths), label))

    def add_examples(self, paths: Sequence[str], name: str) -> None:
        self.push(commands.AddExamples(self.state, name, list(paths)))

    def drop_on_class(self, name: str, paths: Sequence[str]) -> None:
        """Images dropped on a class: those of the labeled folder (dragged from the grid) are
        corrections, like a key press; other files become examples of the class."""
        index_of = self.review.index_of
        images = [p for p in paths if p in index_of]
        others = [p for p in paths if p not in index_of]
        if images:
            self.label_paths(images, name)
        if others:
            self.add_examples(others, name)

    def _say_what_changed(self) -> None:
        """After each correction's re-label: "3 other labels changed" in the status bar."""
        r = self.review
        if r.finished_actions == self._said_actions:
            return
        self._said_actions = r.finished_actions
        n = len(r.last_changed)
        if n:
            s = "" if n == 1 else "s"
            text = (
                f"Your last action changed {n:,} other label{s}: they carry a “changed” badge "
                "(Show ▸ changed by the last action lists them)."
            )
        else:
            text = "Your last action changed no other label."
        self.window.status.setText(text)

    # ------------------------------------------------------------------ selection
    def _selection_changed(self, base: np.ndarray, source: str) -> None:
        if source == "plot" and len(base) > GRID_MARKS:  # a lasso over a million-image result
            self.window.grid.select_base([])
            self.window.status.setText(
                f"{len(base):,} images selected in the plot: “Only these in the grid” lists "
                "them, “Assign class…” labels them."
            )
        elif source != "grid":
            self.window.grid.select_base(base)
        plot = self.window.plot_if_ready()
        if plot is not None and source != "plot":
            plot.set_selection(self.review.points_of_base(base))
        if source == "plot" and self.review.filter_kind == "selection":
            self.window.grid.set_filter("selection")  # a new lasso: the filtered set follows

    def _view_changed(self, kind: str) -> None:
        plot = self.window.plot_if_ready()
        if plot is not None:
            plot.only_button.blockSignals(True)
            plot.only_button.setChecked(kind == "selection")
            plot.only_button.blockSignals(False)

    def show_selection_only(self, on: bool) -> None:
        self.window.grid.set_filter("selection" if on else "all")

    # ------------------------------------------------------------------ the embedding view
    def wire_plot(self, plot: EmbeddingPlot) -> None:
        """The embedding view was built (after the window showed): connect it, give it points."""
        plot.describe = self._describe_point
        plot.projected.connect(lambda _m: self._points_projected(plot))
        plot.selectionMade.connect(lambda points: self.review.select_points(points, "plot"))
        plot.pointClicked.connect(lambda i: self.review.select_points([i], "plot"))
        plot.assignRequested.connect(self._assign_points)
        plot.selectionOnly.connect(self.show_selection_only)
        self._classes_changed()
        if self._plot_data is not None:
            paths, vectors = self._plot_data
            self._plot_data = None
            plot.set_embeddings(paths, vectors)

    def set_embeddings(self, paths: list, vectors: np.ndarray) -> bool:
        """Embeddings from the session; False when the view is not built yet (it gets them when
        it is)."""
        self._asked = False
        plot = self.window.plot_if_ready()
        if plot is None:
            self._plot_data = (list(paths), vectors)
            return False
        plot.set_embeddings(paths, vectors)
        return True

    def _points_projected(self, plot: EmbeddingPlot) -> None:
        self.review.set_points(plot.paths)
        self.recolor_plot()
        plot.set_selection(self.review.points_of_base(self.review.selection))

    def _describe_point(self, i: int) -> str:
        base = self.review.point_base
        return self.review.describe(int(base[i])) if 0 <= i < len(base) and base[i] >= 0 else ""

    def recolor_soon(self) -> None:
        if not self._stopped:
            self._recolor_timer.start()

    def recolor_plot(self) -> None:
        plot = None if self._stopped else self.window.plot_if_ready()
        if plot is not None and plot.paths and not self.review.point_paths:
            plot.clear_points()  # the images were forgotten (another folder)
        if plot is None or not plot.paths or len(plot.paths) != len(self.review.point_base):
            return
        color, star = self.review.point_colors()
        plot.set_colors(color, [c.color for c in self.review.classes], star)

    def _classes_changed(self) -> None:
        plot = self.window.plot_if_ready()
        if plot is not None:
            plot.set_legend(self.review.names(), [c.color for c in self.review.classes])
        self.recolor_soon()

    def predictions_shown(self, running: bool) -> None:
        """While a folder is labeled, ask for its embeddings now and then (throttled)."""
        if not running or self._asked:
            return
        plot = self.window.plot_if_ready()
        n = len(self.review.paths)
        now = time.monotonic()
        if (plot is not None and plot.projecting) or n < 3:
            return
        if now - self._asked_at < LIVE_PLOT_MS / 1000 or n < self._asked_count * LIVE_PLOT_GROWTH:
            return
        self._asked, self._asked_at, self._asked_count = True, now, n
        self.request_embeddings()

    def job_finished(self, status: str) -> None:
        """After Stop the job does not send its embeddings: ask for what was labeled."""
        self._asked_count = 0
        if status == "cancelled" and self.review.paths:
            self._asked = True
            self.request_embeddings()

    def _assign_points(self, points: np.ndarray) -> None:
        paths = [self.review.paths[int(b)] for b in self.review.base_of_points(points)]
        if not paths or not self.review.classes:
            return
        menu = QMenu(self.window)
        menu.addSection(f"Label {len(paths):,} images as")
        for name in self.review.names():
            menu.addAction(name, lambda n=name: self.label_paths(paths, n))
        menu.exec(QCursor.pos())

    # ------------------------------------------------------------------ one at a time
    def open_review_mode(self) -> ReviewMode:
        if self.review_mode is None:
            mode = ReviewMode(self.review, self.images, self.window)
            mode.labelRequested.connect(self.label_paths)
            mode.undoRequested.connect(self.window.undo_stack.undo)
            mode.currentChanged.connect(lambda base: self.review.select([base], "review"))
            self.review_mode = mode
        self.review_mode.start(self.window.grid.view.currentIndex().row())
        return self.review_mode

    def stop(self) -> None:
        """The app closes: no more recolouring."""
        self._stopped = True
        self._recolor_timer.stop()
