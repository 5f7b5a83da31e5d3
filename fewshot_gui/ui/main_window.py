"""The main window: composes the panels, menus and status bar. No logic of its own (see app.py).

The embedding view needs pyqtgraph, whose import takes most of a second: the window shows first
with a light placeholder, and once it has painted, pyqtgraph is imported in a background thread and
the view is built (``plotReady``). Reading :attr:`MainWindow.plot` builds it at once when needed.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.qt.thumbnails import ThumbnailLoader
from fewshot_gui.qt.warmup import import_quietly
from fewshot_gui.ui.class_panel import ClassPanel
from fewshot_gui.ui.controls import ControlPanel
from fewshot_gui.ui.failed_panel import FailedPanel
from fewshot_gui.ui.image_grid import ImageGrid
from fewshot_gui.ui.state import LabelState

if TYPE_CHECKING:
    from fewshot_gui.plots.embedding import EmbeddingPlot

PLOT_MODULE = "fewshot_gui.plots.embedding"
PLOT_FALLBACK_MS = 1500
"""Build the embedding view this long after the window shows even if its tab never painted."""
SPLITTER_SIZES = [320, 640, 440]


class MessageBar(QWidget):
    """A plain-language message at the top of the window (errors in red), closable."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("✕")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, error: bool = True) -> None:
        color = "#8e2424" if error else "#2e5e2e"
        self.setStyleSheet(f"MessageBar, QLabel {{ background:{color}; color:white; }}")
        self.setAutoFillBackground(True)
        self.label.setText(text)
        self.show()


class PlotPlaceholder(QLabel):
    """Stands in for the embedding view until it is built; says when it first painted."""

    painted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Loading the embedding view…", parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background:#1e1e1e; color:#888;")
        self._seen = False

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._seen:
            self._seen = True
            self.painted.emit()


class MainWindow(QMainWindow):
    """``may_close`` (set by the composition root) is asked before the window closes: False
    keeps it open (the user cancelled the unsaved-changes prompt)."""

    closing = Signal()
    plotReady = Signal(object)  # the EmbeddingPlot, once built
    viewChanged = Signal()  # sort or filter chosen (saved with the project)
    _plotModuleLoaded = Signal()  # emitted from the import thread

    def __init__(self, state: LabelState, thumbnails: ThumbnailLoader) -> None:
        super().__init__()
        self.setWindowTitle("fewshot-gui")
        self.setObjectName("fewshotMainWindow")
        self.resize(1400, 860)
        self.may_close: Callable[[], bool] | None = None
        self.undo_stack = QUndoStack(self)
        self.classes = ClassPanel(state, thumbnails)
        self.controls = ControlPanel()
        self.grid = ImageGrid(state, thumbnails)
        self._thumbnail = thumbnails.request
        self._plot: EmbeddingPlot | None = None
        self._plot_loading = False
        self.plot_placeholder = PlotPlaceholder()
        self.plot_placeholder.painted.connect(self.load_plot_soon)
        self.plot_page = QStackedWidget()
        # The view that replaces the placeholder must not ask for more room (the grid would lose
        # a column when it appears): the splitter alone decides the widths.
        self.plot_page.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.plot_page.addWidget(self.plot_placeholder)
        self._plotModuleLoaded.connect(self.ensure_plot, Qt.ConnectionType.QueuedConnection)
        self.failed = FailedPanel()
        self.messages = MessageBar()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 6, 6)
        left_layout.addWidget(self.controls)
        left_layout.addWidget(self.classes, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plot_page, "Embedding")
        self.tabs.addTab(self.failed, "Failed files (0)")
        self.failed.countChanged.connect(lambda n: self.tabs.setTabText(1, f"Failed files ({n})"))
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(self.tabs)
        self.splitter.setSizes(SPLITTER_SIZES)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.grid.sort_box.currentIndexChanged.connect(self.viewChanged)
        self.grid.filter_box.activated.connect(self.viewChanged)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        # Messages appear below the panels: nothing the user is about to click moves when one
        # shows up (above them, it pushed every button and the grid down by a line).
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.messages)
        self.setCentralWidget(central)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel("Add classes, drop a few example images on each, choose a folder.")
        self.device = QLabel("")
        self.statusBar().addWidget(self.status, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.device)
        self._menus()

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open project…", self, shortcut=QKeySequence.StandardKey.Open)
        self.save_action = QAction("&Save project", self, shortcut=QKeySequence.StandardKey.Save)
        self.save_as_action = QAction(
            "Save project &as…", self, shortcut=QKeySequence.StandardKey.SaveAs
        )
        self.recent_menu = QMenu("Open &recent", self)
        self.demo_action = QAction("Open the &demo project", self)
        self.open_result_action = QAction("Open labeling &result…", self)  # --engine ray output
        self.export_action = QAction(
            "&Export labeled images…", self, shortcut=QKeySequence("Ctrl+E")
        )
        self.export_labels_action = QAction("Export &labels (CSV / JSON)…", self)
        self.undo_export_action = QAction("&Undo an export…", self)
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        for item in (
            self.open_action,
            self.recent_menu,
            self.demo_action,
            self.open_result_action,
            self.save_action,
            self.save_as_action,
            None,
            self.export_action,
            self.export_labels_action,
            self.undo_export_action,
            None,
            self.quit_action,
        ):
            if item is None:
                file_menu.addSeparator()
            elif isinstance(item, QMenu):
                file_menu.addMenu(item)
            else:
                file_menu.addAction(item)
        edit = self.menuBar().addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit.addAction(undo)
        edit.addAction(redo)
        self.undo_action, self.redo_action = undo, redo
        view = self.menuBar().addMenu("&View")
        self.review_action = QAction(
            "&Review queue (least confident first)", self, shortcut=QKeySequence("Ctrl+R")
        )
        view.addAction(self.review_action)

    # ------------------------------------------------------------------ view settings
    def view_settings(self) -> dict[str, Any]:
        """How the images are shown (kept in the project): sort, filter, panel widths."""
        kind, name = self.grid.filter_box.currentData() or ("all", "")
        return {
            "sort": self.grid.sort_box.currentText(),
            "filter": [kind, name],
            "splitter": [int(v) for v in self.splitter.sizes()],
        }

    def apply_view_settings(self, settings: dict[str, Any]) -> None:
        """Restore :meth:`view_settings`; values of the wrong type are ignored."""
        sort = settings.get("sort")
        if isinstance(sort, str) and self.grid.sort_box.findText(sort) >= 0:
            self.grid.set_sort(sort)
        view = settings.get("filter")
        if isinstance(view, list) and len(view) == 2 and all(isinstance(v, str) for v in view):
            self.grid.set_filter(view[0], view[1])
        sizes = settings.get("splitter")
        if (
            isinstance(sizes, list)
            and len(sizes) == self.splitter.count()
            and all(isinstance(v, int) and v >= 0 for v in sizes)
            and sum(sizes) > 0
        ):
            self.splitter.setSizes(sizes)

    # ------------------------------------------------------------------ the embedding view
    @property
    def plot(self) -> EmbeddingPlot:
        """The embedding view, built now if it is not yet."""
        return self.ensure_plot()

    def plot_if_ready(self) -> EmbeddingPlot | None:
        """The embedding view, or None while it is still loading."""
        return self._plot

    def load_plot_soon(self) -> None:
        """Import pyqtgraph in a background thread; the view is built in the GUI thread after."""
        if self._plot is not None or self._plot_loading:
            return
        self._plot_loading = True

        def load() -> None:
            with contextlib.suppress(Exception):  # ensure_plot reports failures
                import_quietly(PLOT_MODULE)
            with contextlib.suppress(RuntimeError):  # the window may be gone
                self._plotModuleLoaded.emit()

        threading.Thread(target=load, name="plot-import", daemon=True).start()

    def ensure_plot(self) -> EmbeddingPlot:
        """Build the embedding view (importing pyqtgraph here if the thread has not yet)."""
        if self._plot is None:
            module = importlib.import_module(PLOT_MODULE)
            plot = module.EmbeddingPlot(thumbnail=self._thumbnail)
            sizes = self.splitter.sizes()
            self.plot_page.addWidget(plot)
            self.plot_page.setCurrentWidget(plot)
            self.plot_page.removeWidget(self.plot_placeholder)
            self.plot_placeholder.deleteLater()
            self.splitter.setSizes(sizes)  # the grid keeps its columns
            self._plot = plot
            self.plotReady.emit(plot)
        return self._plot

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._plot is None:
            QTimer.singleShot(PLOT_FALLBACK_MS, self, self.load_plot_soon)

    def closeEvent(self, event) -> None:
        if self.may_close is not None and not self.may_close():
            event.ignore()
            return
        self.closing.emit()
        super().closeEvent(event)
