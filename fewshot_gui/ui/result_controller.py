"""``File ▸ Open labeling result…``: review the output folder of ``label --engine ray`` in the app.

Opening a result is opening a project whose predictions come from the result, not from a folder:
the classes and examples are the run's support set, the grid gets every stored row at once (read
and indexed in a thread with pyarrow and numpy; no model, no decoding), failed files go to the
failed list. Then the labeling
worker is asked for a session over the stored embeddings (``session_options["result"]``: the
worker's factory builds a :class:`~fewshot_gui.cluster.stored.StoredSession`), so corrections
re-label every row with the session's own code and the embedding view gets a representative
sample. A result stored without embeddings can be browsed and exported, not corrected. No torch.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog

from fewshot_gui.core.errors import FewShotError
from fewshot_gui.data.project import ClassInfo, Project
from fewshot_gui.review import PALETTE, ImageTable

RESULT_OPTION = "result"
"""Key of ``AppController.session_options`` naming the open result folder."""
FAILED_SLICE = 500
"""Failed files added to the failed-files list per event-loop turn."""


def project_of(info: Any) -> Project:
    """The project a result stands for: its classes, examples and method/encoder settings."""
    classes: dict[str, ClassInfo] = {}
    for name in info.classes:
        classes[name] = ClassInfo(name, PALETTE[len(classes) % len(PALETTE)])
    for path, name in info.support:
        classes.setdefault(name, ClassInfo(name, PALETTE[len(classes) % len(PALETTE)]))
        classes[name].examples.append(path)
    settings = {"method": info.method, "encoder": info.encoder, "folder": ""}
    return Project(list(classes.values()), {}, settings)


class ResultController(QObject):
    """Opens result folders into the app (``app``: the :class:`AppController`)."""

    opened = Signal(str, float)  # folder, seconds until the grid showed every row
    _read_done = Signal(str, object, float)  # from the reading thread: queued to the GUI thread

    def __init__(self, app: Any, reset: Callable[[], None]) -> None:
        super().__init__(app)
        self.app = app
        self._reset = reset
        self.folder = ""
        self._shown = 0  # results shown so far: a slow failed-files list stops at the next
        self._read_done.connect(self._show)

    def ask_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.app.window, "Open a labeling result")
        if folder:
            self.open(folder)

    def open(self, folder: str) -> bool:
        """Start showing the result in ``folder`` (False, with one plain message, when it is not
        a result). Its rows are read in a thread (pyarrow; seconds for a million rows) while the
        window stays responsive; :attr:`opened` says when the grid holds them."""
        from fewshot_gui.cluster.shards import ResultFolder

        try:
            info = ResultFolder(folder).info()
        except (FewShotError, OSError) as error:
            self.app.show_error(str(error))
            return False
        if info is None:
            self.app.show_error(f"{folder} is not a labeling result (no run.json)")
            return False
        self.app.window.status.setText(f"Opening the result {folder}…")
        started = time.perf_counter()
        threading.Thread(
            target=self._read, args=(folder, started), name="open-result", daemon=True
        ).start()
        return True

    def _read(self, folder: str, started: float) -> None:
        """In a thread: read the result and build the grid's image table from it (seconds for a
        million rows, in pieces that leave the GIL to the window); hand both to the GUI thread
        (a queued signal)."""
        from fewshot_gui.cluster.result import LabelingResult

        try:
            result = LabelingResult.open(folder)
            failures = result.failures()
            images = ImageTable.filled(result.predictions(), failures)
            read = (result.info, len(result), images, failures)
            del result  # the table keeps what the window needs (paths, labels as codes)
            self._read_done.emit(folder, read, started)
        except (FewShotError, OSError) as error:
            self._read_done.emit(folder, str(error), started)

    def _show(self, folder: str, read: Any, started: float) -> None:
        if isinstance(read, str):
            self.app.show_error(read)
            return
        info, count, images, failures = read
        app, window = self.app, self.app.window
        self._reset()
        window.undo_stack.clear()
        window.messages.hide()
        app.state.load(project_of(info))
        window.controls.apply_settings({"method": info.method, "folder": ""})
        app.project.path = None
        app.review.replace_images(images)  # one reset of the grid: every row at once
        self._shown += 1
        self._list_failures(failures, self._shown)
        self.folder = os.path.abspath(folder)
        note = "" if info.embeddings else " (no stored embeddings: corrections need them)"
        window.status.setText(f"Opened the result {folder}: {count:,} files{note}.")
        if info.embeddings:
            app.session_options[RESULT_OPTION] = self.folder
            support, reviewed = app.state.support(), app.state.review_labels()
            app.worker.start(app.session_settings(), support, "", False, reviewed)
        self.opened.emit(self.folder, time.perf_counter() - started)

    def _list_failures(self, failures: list, shown: int, start: int = 0) -> None:
        """Fill the failed-files list a slice per event-loop turn (10,000 rows of a table widget
        at once would hold the window for a second), until another result or project is shown."""
        if start < len(failures) and shown == self._shown:
            self.app.window.failed.add(failures[start : start + FAILED_SLICE])
            after = start + FAILED_SLICE
            QTimer.singleShot(0, self, lambda: self._list_failures(failures, shown, after))

    def forget(self) -> None:
        """Another project replaces the result: sessions are built from folders again."""
        self.app.session_options.pop(RESULT_OPTION, None)
        self.folder = ""
        self._shown += 1
