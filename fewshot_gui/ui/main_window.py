"""The main window: composes the panels, menus and status bar. No logic of its own (see app.py)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.plots.embedding import EmbeddingPlot
from fewshot_gui.ui.class_panel import ClassPanel
from fewshot_gui.ui.controls import ControlPanel
from fewshot_gui.ui.failed_panel import FailedPanel
from fewshot_gui.ui.image_grid import ImageGrid
from fewshot_gui.ui.state import LabelState
from fewshot_gui.workers.thumbnails import ThumbnailLoader


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


class MainWindow(QMainWindow):
    closing = Signal()

    def __init__(self, state: LabelState, thumbnails: ThumbnailLoader) -> None:
        super().__init__()
        self.setWindowTitle("fewshot-gui")
        self.setObjectName("fewshotMainWindow")
        self.resize(1400, 860)
        self.undo_stack = QUndoStack(self)
        self.classes = ClassPanel(state, thumbnails)
        self.controls = ControlPanel()
        self.grid = ImageGrid(state, thumbnails)
        self.plot = EmbeddingPlot(thumbnail=thumbnails.request)
        self.failed = FailedPanel()
        self.messages = MessageBar()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 6, 6)
        left_layout.addWidget(self.controls)
        left_layout.addWidget(self.classes, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plot, "Embedding")
        self.tabs.addTab(self.failed, "Failed files (0)")
        self.failed.countChanged.connect(lambda n: self.tabs.setTabText(1, f"Failed files ({n})"))
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(self.tabs)
        self.splitter.setSizes([320, 640, 440])
        self.splitter.setStretchFactor(1, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.messages)
        layout.addWidget(self.splitter, 1)
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
        self.export_action = QAction(
            "&Export labeled images…", self, shortcut=QKeySequence("Ctrl+E")
        )
        self.undo_export_action = QAction("&Undo an export…", self)
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        for item in (
            self.open_action,
            self.recent_menu,
            self.demo_action,
            self.save_action,
            self.save_as_action,
            None,
            self.export_action,
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

    def closeEvent(self, event) -> None:
        self.closing.emit()
        super().closeEvent(event)
