"""Folder chooser (also a drop target), method and encoder choice, device indicator, start / stop."""

from __future__ import annotations

import os
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.core.names import FALLBACK_METHODS
from fewshot_gui.ui.dropped_paths import paths_from_mime

DEFAULT_ENCODER = "(default)"


_AUTO = re.compile(r"^auto\s*(?:→|->)\s*(\w+)\s*(?:\((.*)\))?\s*$", re.S)


def plain_method_text(description: str) -> str:
    """One short sentence for what the method decided, from the engine's technical description
    (e.g. ``auto → anil (5-fold accuracy: metric 0.83, anil 0.91)`` → "auto chose anil: it was
    the most accurate on your own examples")."""
    match = _AUTO.match(description.strip())
    if not match:
        return f"method: {description.split(' (')[0]}" if description else ""
    chosen, detail = match.group(1), match.group(2) or ""
    if "no evaluation" in detail or "no support" in detail:
        return f"auto uses {chosen}: too few examples to compare methods yet"
    if "accuracy" in detail:
        return f"auto chose {chosen}: it was the most accurate on your own examples"
    return f"auto chose {chosen}"


class FolderEdit(QLineEdit):
    """A line edit that takes a dropped folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setPlaceholderText("folder of images to label (drop a folder here)")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = paths_from_mime(event.mimeData())
        if paths:
            path = paths[0] if os.path.isdir(paths[0]) else os.path.dirname(paths[0])
            self.setText(path)
            self.editingFinished.emit()
            event.acceptProposedAction()


class ControlPanel(QWidget):
    """Settings for a labeling run and the buttons that start and stop it."""

    startRequested = Signal()
    stopRequested = Signal()
    settingsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = FolderEdit(self)
        browse = QToolButton(self)
        browse.setText("…")
        browse.setToolTip("choose the folder to label")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.method = QComboBox(self)
        self.encoder = QComboBox(self)
        self.set_choices(list(FALLBACK_METHODS), [])
        self.device = QLabel("device: starts with the first run", self)
        self.device.setObjectName("deviceLabel")
        self.method_info = QLabel("", self)  # what the method decided (e.g. auto's choice)
        self.method_info.setObjectName("methodInfo")
        self.method_info.setWordWrap(True)
        # Room for two lines from the start: the buttons below must not move when it fills in.
        self.method_info.setFixedHeight(2 * self.method_info.fontMetrics().lineSpacing() + 4)
        self.start_button = QPushButton("▶ Label folder", self)
        self.stop_button = QPushButton("■ Stop", self)
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self.startRequested)
        self.stop_button.clicked.connect(self.stopRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.stop_button)
        form = QFormLayout()
        form.addRow("Folder", row)
        form.addRow("Method", self.method)
        form.addRow("Encoder", self.encoder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.device)
        layout.addWidget(self.method_info)
        layout.addLayout(buttons)
        self.method.currentIndexChanged.connect(self.settingsChanged)
        self.encoder.currentIndexChanged.connect(self._show_encoder_reason)
        self.encoder.currentIndexChanged.connect(self.settingsChanged)
        self.folder.editingFinished.connect(self.settingsChanged)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to label", self.folder.text())
        if folder:
            self.folder.setText(folder)
            self.settingsChanged.emit()

    def set_choices(
        self,
        methods: list[str],
        encoders: list[str],
        helps: dict[str, str] | None = None,
        unusable: dict[str, str] | None = None,
    ) -> None:
        """Fill the choosers (names, each method's help line and why an encoder cannot be used
        now come from the worker, which may import the engine's registries). An unusable encoder
        is listed disabled, its reason as the tooltip; it stays selected only when it was."""
        current_m, current_e = self.method.currentData(), self.encoder.currentData()
        for box in (self.method, self.encoder):
            box.blockSignals(True)
            box.clear()
        for name in methods:
            self.method.addItem(name, name)
            self.method.setItemData(
                self.method.count() - 1, (helps or {}).get(name, name), Qt.ItemDataRole.ToolTipRole
            )
        self.encoder.addItem(DEFAULT_ENCODER, "")
        for name in encoders:
            self.encoder.addItem(name, name)
            reason = (unusable or {}).get(name)
            if reason:
                self._disable_encoder(self.encoder.count() - 1, reason)
        self.method.setCurrentIndex(max(0, self.method.findData(current_m or "auto")))
        self.encoder.setCurrentIndex(max(0, self.encoder.findData(current_e or "")))
        self._show_encoder_reason()
        for box in (self.method, self.encoder):
            box.blockSignals(False)

    def _disable_encoder(self, row: int, reason: str) -> None:
        item = self.encoder.model().item(row)  # a QStandardItemModel's row
        item.setEnabled(False)
        item.setToolTip(f"not usable now: {reason}")

    def _show_encoder_reason(self) -> None:
        """The chosen encoder's reason (when it is unusable, e.g. from a saved project) on the
        chooser itself, where it is seen without opening the list."""
        row = self.encoder.currentIndex()
        item = self.encoder.model().item(row) if row >= 0 else None
        unusable = item is not None and not item.isEnabled()
        self.encoder.setToolTip(item.toolTip() if unusable else "")

    def set_method_info(self, details: str, plain: str = "") -> None:
        """Show what the method decided in plain words (``plain``, or derived from ``details``);
        the technical ``details`` go to the tooltip."""
        self.method_info.setText(plain or plain_method_text(details))
        self.method_info.setToolTip(details)

    def set_device(self, name: str) -> None:
        self.device.setText(f"device: {name}")

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def settings(self) -> dict:
        return {
            "folder": self.folder.text().strip(),
            "method": self.method.currentData() or "auto",
            "encoder": self.encoder.currentData() or "",
        }

    def apply_settings(self, settings: dict) -> None:
        if settings.get("folder"):
            self.folder.setText(str(settings["folder"]))
        for key, box in (("method", self.method), ("encoder", self.encoder)):
            value = settings.get(key)
            if value:
                if box.findData(value) < 0:
                    box.addItem(str(value), value)
                box.setCurrentIndex(box.findData(value))
