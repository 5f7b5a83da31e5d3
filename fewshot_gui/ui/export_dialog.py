"""The export dialog (destination, copy / move / link, unknown images, labels file), a runner
that performs exports and undos off the GUI thread, and the message shown when one finishes."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QToolButton,
    QWidget,
)

from fewshot_gui.data.export import (
    ExportResult,
    LabelRow,
    UndoResult,
    export_images,
    undo_export,
    write_labels,
)
from fewshot_gui.qt.pool import PoolRunner

MODES = {"copy the images": "copy", "move the images": "move", "link to the images": "link"}
UNKNOWN = {"into DEST/_unknown": "folder", "leave them in place": "skip"}


class ExportDialog(QDialog):
    def __init__(self, count: int, dest: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {count:,} labeled images")
        self.dest = QLineEdit(dest, self)
        browse = QToolButton(self)
        browse.setText("…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.dest, 1)
        row.addWidget(browse)
        self.mode = QComboBox(self)
        self.mode.addItems(list(MODES))
        self.unknown = QComboBox(self)
        self.unknown.addItems(list(UNKNOWN))
        self.labels = QCheckBox(
            "also write labels.csv (path, label, confidence, error, source)", self
        )
        self.labels.setChecked(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Destination", row)
        form.addRow("How", self.mode)
        form.addRow("Unknown images", self.unknown)
        form.addRow(self.labels)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.dest.text())
        if folder:
            self.dest.setText(folder)

    def options(self) -> dict:
        return {
            "dest": self.dest.text().strip(),
            "mode": MODES[self.mode.currentText()],
            "unknown": UNKNOWN[self.unknown.currentText()],
            "labels": self.labels.isChecked(),
        }


class ExportRunner(QObject):
    """Runs exports and undos on a one-thread pool; results come back as signals."""

    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = PoolRunner(1, self)  # one export or undo at a time, in order
        self._runner.done.connect(lambda _tag, result: self.finished.emit(result))
        self._runner.failed.connect(lambda _tag, message: self.failed.emit(message))

    def export(
        self, rows: Sequence[LabelRow], dest: str, mode: str, unknown: str, labels: bool
    ) -> None:
        rows = list(rows)

        def job():
            result = export_images(rows, dest, mode, unknown)
            if labels:
                write_labels(rows, f"{dest}/labels.csv")
            return result

        self._runner.submit(job)

    def undo(self, dest: str, all_exports: bool = False) -> None:
        """Undo the newest export into ``dest`` (``all_exports``: every one, newest first)."""
        self._runner.submit(lambda: undo_export(dest, all_exports))

    def wait(self, msecs: int = 10000) -> bool:
        return self._runner.wait(msecs)


def result_message(result: ExportResult | UndoResult) -> tuple[str, bool]:
    """The window's message for a finished export or undo, and whether it reports a problem."""
    text = result.summary()
    if isinstance(result, ExportResult):
        text += " (File ▸ Undo an export reverses it)"
        problems = result.failures
        error = bool(result.failures or result.stopped)
    else:
        problems = result.failures or result.refused
        error = bool(problems)
    if problems:
        text += f". For example {problems[0][0]}: {problems[0][1]}"
    return text[:1].upper() + text[1:], error
