"""Export from the app: the labels file alone, the images into class folders (off the GUI thread,
by :class:`~fewshot_gui.ui.export_dialog.ExportRunner`), and undoing an export."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QWidget

from fewshot_gui.core.errors import FewShotError
from fewshot_gui.data.export import ExportResult, LabelRow, write_labels
from fewshot_gui.ui.export_dialog import ExportDialog, ExportRunner, result_message
from fewshot_gui.ui.settings import AppSettings

if TYPE_CHECKING:
    from fewshot_gui.review import ReviewModel

NOTHING_YET = "Nothing to export yet: label a folder first."


class ExportController(QObject):
    """Asks where and how, runs the export or undo, and reports how it went.

    ``show_message(text, error)`` and ``set_status(text)`` are the window's message line and
    status bar; ``review`` gives the rows (labels and where each came from).
    """

    def __init__(
        self,
        window: QWidget,
        review: ReviewModel,
        settings: AppSettings,
        show_message: Callable[[str, bool], None],
        set_status: Callable[[str], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.window, self.review, self.settings = window, review, settings
        self._show_message, self._set_status = show_message, set_status
        self.runner = ExportRunner(self)
        self.runner.finished.connect(self._done)
        self.runner.failed.connect(lambda text: self._error(text))
        self.last_journal: str | None = None

    def _error(self, text: str) -> None:
        self._show_message(text, True)
        self._set_status(text)

    def label_rows(self) -> list[LabelRow]:
        return self.review.label_rows()

    def export_labels(self, path: str) -> bool:
        """Write the labels alone (no images): ``.json`` → JSON, else CSV (``.csv`` added)."""
        rows = self.label_rows()
        if not rows:
            self._error(NOTHING_YET)
            return False
        if not path.lower().endswith((".csv", ".json")):
            path += ".csv"
        try:
            written = write_labels(rows, path)  # the one labels writer (escaped, atomic)
        except (OSError, FewShotError) as error:
            reason = error.strerror if isinstance(error, OSError) else None
            self._error(f"could not write {path}: {reason or error}")
            return False
        self.settings.set_last("labelsFile", str(written))
        users = sum(r.source == "user" for r in rows)
        self._show_message(
            f"Wrote the labels of {len(rows):,} images ({users:,} yours) to {written}", False
        )
        return True

    def ask_export_labels(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self.window,
            "Export labels",
            self.settings.last("labelsFile"),
            "CSV (*.csv);;JSON (*.json)",
        )
        if path and "json" in chosen.lower() and not path.lower().endswith((".csv", ".json")):
            path += ".json"
        if path:
            self.export_labels(path)

    def export(
        self, dest: str, mode: str = "copy", unknown: str = "folder", labels: bool = True
    ) -> None:
        rows = self.label_rows()
        if not rows:
            self._error(NOTHING_YET)
            return
        self._set_status(f"Exporting {len(rows):,} images…")
        self.runner.export(rows, dest, mode, unknown, labels)

    def ask_export(self) -> None:
        rows = self.label_rows()
        if not rows:
            self._error(NOTHING_YET)
            return
        dialog = ExportDialog(len(rows), self.settings.last("exportDest"), self.window)
        if dialog.exec():
            opts = dialog.options()
            if not opts["dest"]:
                self._error("Choose a destination folder for the export.")
                return
            self.settings.set_last("exportDest", opts["dest"])
            self.export(**opts)

    def undo_export(self, journal: str) -> None:
        self.runner.undo(journal)

    def ask_undo_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.window,
            "Export folder to undo",
            os.path.dirname(self.last_journal) if self.last_journal else "",
        )
        if folder:
            self.undo_export(folder)

    def _done(self, result) -> None:
        if isinstance(result, ExportResult):
            self.last_journal = str(result.journal)
        text, error = result_message(result)
        self._show_message(text, error)
        self._set_status("Ready")
