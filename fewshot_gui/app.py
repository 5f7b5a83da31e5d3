"""The composition root: builds the window, the worker and the helpers, and wires their signals.

Nothing here imports torch, the session or pyqtgraph at import time: the window shows first, then
the worker thread imports the engine (``warm_up``) and the window builds the embedding view.
Updates from the worker are coalesced (ui/labeling_run.py) so that the GUI thread paints at most
~10 times a second however fast images are labeled.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from fewshot_gui.core.names import class_name_problem
from fewshot_gui.data.export import LabelRow
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.qt.thumbnails import ThumbnailLoader
from fewshot_gui.ui import commands
from fewshot_gui.ui.export_controller import ExportController
from fewshot_gui.ui.image_grid import THUMB
from fewshot_gui.ui.labeling_run import LabelingRun
from fewshot_gui.ui.main_window import MainWindow
from fewshot_gui.ui.preview import PreviewDialog
from fewshot_gui.ui.project_controller import ProjectController
from fewshot_gui.ui.result_controller import ResultController
from fewshot_gui.ui.review_controller import ReviewController
from fewshot_gui.ui.settings import AppSettings
from fewshot_gui.ui.state import LabelState
from fewshot_gui.workers.labeling import LabelingController, SessionFactory

SWITCH_INTERVAL_S = 0.001
"""The worker and decode threads run Python too: a short GIL switch interval lets the GUI thread
take the GIL back quickly between their steps (Python's default is 5 ms)."""
WARM_UP_FALLBACK_MS = 5000
"""The engine is imported after the embedding view is built, or this long after start-up."""


class AppController(QObject):
    """Owns the state, the window and the worker; the only place that connects them.

    Labeling jobs are :class:`~fewshot_gui.ui.labeling_run.LabelingRun`'s (``run``): its
    ``jobDone`` and ``predictionsShown`` are this object's, emitted in the GUI thread after the
    window has been updated. Connect worker signals to methods of QObjects only (a plain Python
    callable would run in the worker thread).
    """

    jobDone = Signal(int, str)
    predictionsShown = Signal(int)

    def __init__(
        self,
        factory: SessionFactory | None = None,
        settings: AppSettings | None = None,
        thumbnail_cache: str | None = "auto",
        session_options: dict | None = None,
    ) -> None:
        super().__init__()
        self.state = LabelState(self)
        self.thumbnails = ThumbnailLoader(size=THUMB, cache_dir=thumbnail_cache, parent=self)
        self.window = MainWindow(self.state, self.thumbnails)
        self.worker = LabelingController(factory, parent=self)
        self.preview = PreviewDialog(self.window)
        self.review = self.state.review  # the review model (fewshot_gui/review.py)
        self.reviewing = ReviewController(
            self.window,
            self.state,
            self.push,
            self.worker.request_embeddings,
            self.preview.loader,
            self,
        )
        self.settings = settings or AppSettings()
        self.exports = ExportController(
            self.window, self.review, self.settings, self.show_message, self._set_status, self
        )
        self.exporter = self.exports.runner  # File ▸ Export… runs here (tests wait on it)
        self.session_options = dict(session_options or {})
        self.project = ProjectController(self.window, self.state, self.settings, self)
        self.results = ResultController(self, self._reset_labeling)  # File ▸ Open labeling result
        self.run = LabelingRun(
            self.window,
            self.state,
            self.worker,
            self.reviewing,
            self.session_settings,
            self.show_error,
            self.show_message,
            self,
        )
        self.run.jobDone.connect(self.jobDone)
        self.run.predictionsShown.connect(self.predictionsShown)
        self._shut = False
        self._warmed = False
        self._wire()
        self._restore_window()

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        w, s = self.window, self.state
        w.classes.addRequested.connect(lambda: self.add_class())
        w.classes.examplesDropped.connect(self.reviewing.drop_on_class)
        w.classes.exampleRemoveRequested.connect(
            lambda name, paths: self.push(commands.RemoveExamples(s, name, paths))
        )
        w.classes.renameRequested.connect(self.rename_class)
        w.classes.recolourRequested.connect(
            lambda name, color: self.push(commands.RecolourClass(s, name, color))
        )
        w.classes.deleteRequested.connect(lambda name: self.push(commands.DeleteClass(s, name)))
        wk = self.worker.worker
        wk.error.connect(self.show_error)
        wk.warning.connect(self.show_message)  # a method: delivered in the GUI thread
        wk.deviceReady.connect(self._device)
        wk.methodChosen.connect(self.window.controls.set_method_info)
        wk.choicesReady.connect(w.controls.set_choices)
        w.grid.previewRequested.connect(self.show_preview)
        w.plotReady.connect(self._wire_plot)
        w.failed.activated.connect(lambda _p: w.grid.set_filter("failed"))
        w.review_action.triggered.connect(lambda: w.grid.set_sort("least confident first"))
        self.project.aboutToLoad.connect(self._reset_labeling)
        self.project.aboutToLoad.connect(self.results.forget)
        w.open_result_action.triggered.connect(self.results.ask_open)
        self.project.loaded.connect(self._project_loaded)
        self.project.error.connect(self.show_error)
        w.may_close = lambda: self._shut or self.project.confirm_close()
        w.export_action.triggered.connect(self.exports.ask_export)
        w.export_labels_action.triggered.connect(self.exports.ask_export_labels)
        w.undo_export_action.triggered.connect(self.exports.ask_undo_export)
        w.closing.connect(self.shutdown)

    def _wire_plot(self, plot) -> None:
        """The embedding view was built (after the window showed): connect it, give it points."""
        self.reviewing.wire_plot(plot)
        plot.message.connect(lambda m: self.show_message(m, error=False))

    def warm_up(self) -> None:
        """After the window shows: let the worker import the engine and report method names."""
        if not self._warmed:
            self._warmed = True
            self.worker.request_choices()

    def push(self, command) -> None:
        try:
            self.window.undo_stack.push(command)
        except ValueError as error:
            self.show_error(str(error))

    # ------------------------------------------------------------------ messages
    def show_error(self, text: str) -> None:
        self.window.messages.show_message(text, error=True)
        self.window.status.setText(text)

    def show_message(self, text: str, error: bool = False) -> None:
        self.window.messages.show_message(text, error=error)

    def _set_status(self, text: str) -> None:
        self.window.status.setText(text)

    def _device(self, name: str) -> None:
        self.window.controls.set_device(name)
        self.window.device.setText(name)

    # ------------------------------------------------------------------ classes
    def add_class(self, name: str | None = None) -> str:
        """Add a class; without a name it gets "class N" and its name is edited in place."""
        problem = class_name_problem(name) if name is not None else None
        if problem:
            self.show_error(problem)
            return ""
        new = name or self.state.new_name()
        self.push(commands.AddClass(self.state, ClassInfo(new, self.state.next_color())))
        if name is None:
            self.window.classes.edit_name(new)
        return new

    def rename_class(self, old: str, new: str) -> None:
        problem = self.window.classes.name_problem(old, new)
        if problem:
            self.show_error(problem)
            return
        self.push(commands.RenameClass(self.state, old, new.strip()))

    # ------------------------------------------------------------------ labeling (ui/labeling_run)
    def session_settings(self) -> dict:
        settings = self.window.controls.settings()
        settings.pop("folder", None)
        settings.update(self.session_options)
        return settings

    def start(self, cached_only: bool = False) -> bool:
        """Label the folder (``cached_only``: show what the embedding cache already has)."""
        return self.run.start(cached_only)

    def stop(self) -> None:
        self.run.stop()

    @property
    def running(self) -> bool:
        """A labeling job (not a re-fit) is in progress."""
        return self.run.running

    # ------------------------------------------------------------------ plot ↔ grid
    def recolor_plot(self) -> None:
        self.reviewing.recolor_plot()

    def label_paths(self, paths: Sequence[str], label: str | None) -> None:
        self.reviewing.label_paths(paths, label)

    def show_preview(self, path: str) -> None:
        i = self.review.index_of.get(path)
        self.preview.show_path(path, self.review.describe(i) if i is not None else "")

    # ------------------------------------------------------------------ projects
    @property
    def project_path(self) -> str | None:
        return self.project.path

    def open_project(self, path: str) -> bool:
        return self.project.open(path)

    def save(self) -> bool:
        return self.project.save()

    def save_as(self, path: str) -> bool:
        return self.project.save_as(path)

    def open_demo(self) -> bool:
        return self.project.open_demo()

    def _reset_labeling(self) -> None:
        self.run.reset()

    def _project_loaded(self) -> None:
        """Show the project's predictions at once from the embedding cache (nothing is decoded:
        images not cached yet wait for "Label folder")."""
        folder = self.window.controls.settings()["folder"]
        if folder and os.path.isdir(folder) and self.state.support():
            self.start(cached_only=True)
        elif folder and not os.path.isdir(folder):
            self.show_error(
                f"The project's folder {folder} is not there any more: choose it again."
            )

    # ------------------------------------------------------------------ export (ui/export_controller)
    def label_rows(self) -> list[LabelRow]:
        return self.exports.label_rows()

    def export_labels(self, path: str) -> bool:
        return self.exports.export_labels(path)

    def export(
        self, dest: str, mode: str = "copy", unknown: str = "folder", labels: bool = True
    ) -> None:
        self.exports.export(dest, mode, unknown, labels)

    def undo_export(self, journal: str) -> None:
        self.exports.undo_export(journal)

    # ------------------------------------------------------------------ window state
    def _restore_window(self) -> None:
        geometry, state = self.settings.window()
        if geometry is not None:
            self.window.restoreGeometry(geometry)
        if state is not None:
            self.window.restoreState(state)

    def shutdown(self) -> None:
        """Save window state, stop the worker and timers (idempotent)."""
        self.project.autosave_timer.stop()
        self.reviewing.stop()
        self.run.close()
        if self.window.isVisible() or not self._shut:
            self.settings.save_window(self.window.saveGeometry(), self.window.saveState())
        self._shut = True
        self.worker.stop()
        self.worker.worker.blockSignals(True)
        self.thumbnails.clear_pending()
        self.thumbnails.wait(2000)
        plot = self.window.plot_if_ready()
        if plot is not None:
            plot.wait(2000)


def start_app(
    settings: AppSettings | None = None,
    thumbnail_cache: str | None = "auto",
    session_options: dict | None = None,
    argv: Sequence[str] | None = None,
    after_show: Callable[[AppController], None] | None = None,
) -> AppController:
    """Build the app and show its window; ``after_show(controller)`` runs from the event loop once
    it is visible. Returns the controller (run the loop with ``exec``).

    Loading follows the window, one heavy step at a time: the embedding view (pyqtgraph) once the
    window has painted, then the engine (torch, in the worker thread) once the view is built.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("fewshot-gui")
    app.setOrganizationName("fewshot-gui")
    controller = AppController(
        settings=settings, thumbnail_cache=thumbnail_cache, session_options=session_options
    )
    # What exists now (Qt, numpy, the app's modules and widgets) lives as long as the app: frozen,
    # the garbage collector no longer walks it, so its pauses stay short.
    gc.freeze()
    # quit without the window closing (app.quit(), the session ending): still stop the worker
    # thread cleanly (a running QThread at exit aborts the process)
    app.aboutToQuit.connect(controller.shutdown)
    controller.window.show()

    controller.window.plotReady.connect(controller.warm_up)
    QTimer.singleShot(WARM_UP_FALLBACK_MS, controller, controller.warm_up)
    if after_show is not None:
        QTimer.singleShot(0, controller, lambda: after_show(controller))
    return controller


def run_app(
    project: str | None = None, demo: bool = False, argv: Sequence[str] | None = None
) -> int:
    """Open the desktop app (blocking); returns the exit status."""
    started = time.perf_counter()

    def after_show(controller: AppController) -> None:
        if os.environ.get("FEWSHOT_GUI_TIMING"):
            torch_loaded = "torch" in sys.modules
            print(
                f"window visible after {time.perf_counter() - started:.2f} s "
                f"(torch imported: {torch_loaded})",
                file=sys.stderr,
            )
        if demo and controller.open_demo():
            controller.start()
        elif project:
            controller.open_project(project)
        else:  # the last session may have ended without saving (a crash, a kill)
            controller.project.offer_restore()

    controller = start_app(argv=argv, after_show=after_show)  # noqa: F841  (kept alive)
    return int(QApplication.instance().exec())
