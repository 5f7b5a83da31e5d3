"""The composition root: builds the window, the worker and the helpers, and wires their signals.

Nothing here imports torch, the session or pyqtgraph at import time: the window shows first, then
the worker thread imports the engine (``warm_up``) and the window builds the embedding view.
Updates from the worker are coalesced so that the GUI thread paints at most ~10 times a second
however fast images are labeled.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QFileDialog

from fewshot_gui.core.errors import FewShotError
from fewshot_gui.core.names import class_name_problem
from fewshot_gui.data.export import ExportResult, LabelRow, write_labels
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.qt.throttle import Coalescer
from fewshot_gui.qt.thumbnails import ThumbnailLoader
from fewshot_gui.ui import commands
from fewshot_gui.ui.export_dialog import ExportDialog, ExportRunner, result_message
from fewshot_gui.ui.image_grid import THUMB
from fewshot_gui.ui.main_window import MainWindow
from fewshot_gui.ui.preview import PreviewDialog
from fewshot_gui.ui.project_controller import ProjectController
from fewshot_gui.ui.result_controller import ResultController
from fewshot_gui.ui.review_controller import ReviewController
from fewshot_gui.ui.settings import AppSettings
from fewshot_gui.ui.state import LabelState
from fewshot_gui.workers.labeling import LabelingController, SessionFactory

UPDATE_MS = 100
"""Partial predictions and progress reach the window at most this often (ms)."""
SWITCH_INTERVAL_S = 0.001
"""The worker and decode threads run Python too: a short GIL switch interval lets the GUI thread
take the GIL back quickly between their steps (Python's default is 5 ms)."""
WARM_UP_FALLBACK_MS = 5000
"""The engine is imported after the embedding view is built, or this long after start-up."""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class AppController(QObject):
    """Owns the state, the window and the worker; the only place that connects them.

    ``jobDone`` and ``predictionsShown`` are emitted in the GUI thread after the window has been
    updated (the worker's own signals may reach plain Python callables in the worker thread).
    Predictions and progress are applied in batches (:data:`UPDATE_MS`); anything that reads the
    grid's model flushes the waiting predictions first.
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
        self.exporter = ExportRunner(self)
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
        self.session_options = dict(session_options or {})
        self.project = ProjectController(self.window, self.state, self.settings, self)
        self.results = ResultController(self, self._reset_labeling)  # File ▸ Open labeling result
        self.last_journal: str | None = None
        self.fitted_classes: list[str] = []
        self.labeled_folder = ""
        self.folder_total = -1
        self.job_name = ""
        self._job_names: dict[int, str] = {}
        self.running = False
        self._shut = False
        self._warmed = False
        self._last_progress = 0.0
        self.job_started_at = 0.0
        self.predictions_seen = 0
        self._prediction_updates = Coalescer(self._show_predictions, UPDATE_MS, self)
        self._progress_updates = Coalescer(
            lambda items: self._show_progress(items[-1]), UPDATE_MS, self
        )
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
        s.supportEdited.connect(self._support_edited)
        s.classesChanged.connect(self._classes_changed)
        w.controls.startRequested.connect(self.start)
        w.controls.stopRequested.connect(self.stop)
        wk = self.worker.worker
        wk.progress.connect(self._progress)
        wk.predictions.connect(self._predictions)
        wk.failures.connect(self._failures)
        wk.embeddings.connect(self._embeddings)
        wk.error.connect(self.show_error)
        wk.warning.connect(self.show_message)  # a method: delivered in the GUI thread
        wk.deviceReady.connect(self._device)
        wk.methodChosen.connect(self.window.controls.set_method_info)
        wk.choicesReady.connect(w.controls.set_choices)
        wk.jobStarted.connect(self._job_started)
        wk.jobFinished.connect(self._job_finished)
        w.grid.previewRequested.connect(self.show_preview)
        w.plotReady.connect(self._wire_plot)
        w.failed.activated.connect(lambda _p: w.grid.set_filter("failed"))
        w.review_action.triggered.connect(lambda: w.grid.set_sort("least confident first"))
        self.project.aboutToLoad.connect(self._reset_labeling)
        self.project.aboutToLoad.connect(self.results.forget)
        w.open_result_action.triggered.connect(self.results.ask_open)
        self.project.loaded.connect(self._project_loaded)
        self.project.error.connect(self.show_error)
        w.controls.settingsChanged.connect(self._folder_changed)
        w.may_close = lambda: self._shut or self.project.confirm_close()
        w.export_action.triggered.connect(self.ask_export)
        w.export_labels_action.triggered.connect(self.ask_export_labels)
        w.undo_export_action.triggered.connect(self.ask_undo_export)
        self.exporter.finished.connect(self._export_done)
        self.exporter.failed.connect(self.show_error)
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

    def _classes_changed(self) -> None:
        names = self.state.names()
        if self.fitted_classes and any(c not in names for c in self.fitted_classes):
            self.refit()  # renamed or deleted: the session needs the new support set

    def _support_edited(self, changes: list) -> None:
        if not self.fitted_classes:
            self.review.finish_action()  # nothing to re-label: no other label changes
            return
        self.review.expect_relabel()  # what it changed is known when the re-label arrives
        if any(lab is not None and lab not in self.fitted_classes for _, lab in changes):
            self.refit()  # a class new to the session
        else:
            self.worker.apply_labels(changes)

    # ------------------------------------------------------------------ labeling
    def session_settings(self) -> dict:
        settings = self.window.controls.settings()
        settings.pop("folder", None)
        settings.update(self.session_options)
        return settings

    def start(self, cached_only: bool = False) -> bool:
        """Label the folder (``cached_only``: show what the embedding cache already has)."""
        folder = self.window.controls.settings()["folder"]
        support = self.state.support()
        if not support:
            self.show_error("Drop at least one example image on a class first.")
            return False
        if not folder or not os.path.isdir(folder):
            self.show_error(
                f"Choose a folder of images to label ({folder or 'none chosen'} is not a folder)."
            )
            return False
        self.window.messages.hide()
        self._prediction_updates.flush()
        if os.path.abspath(folder) != self.labeled_folder:
            self.window.grid.model.clear()  # the plot's points have no image until re-embedded
            self.window.failed.clear()
            self.labeled_folder = os.path.abspath(folder)
        self.review.forget_action()
        self.folder_total = -1
        self.worker.start(self.session_settings(), support, folder, cached_only)
        return True

    def refit(self) -> None:
        support = self.state.support()
        if support:
            self.worker.refit(self.session_settings(), support)

    def stop(self) -> None:
        """Stop labeling. The window shows it at once; the worker ends within one small piece
        of work (a few images through the model) and then reports the job as cancelled."""
        in_flight = self.running or self.window.controls.stop_button.isEnabled()
        self.worker.cancel()
        if in_flight:  # a job the window may not have heard start yet (its signal is queued)
            self.window.controls.set_running(False)
            self.window.status.setText("Stopping…")

    def _job_started(self, _job: int, name: str) -> None:
        self._job_names[_job] = name
        if _job != self.worker.latest_job:
            return  # already superseded by a newer job
        self.running = name in ("label", "cached")
        self.job_name = name
        self.job_started_at = time.perf_counter()
        self.predictions_seen = 0
        self.window.controls.set_running(True)
        self.window.status.setText(
            {
                "label": "Loading the model…",
                "cached": "Loading the model for the saved predictions…",
            }.get(name, "Re-fitting…")
        )
        self.window.progress.setValue(0)
        self.window.progress.show()

    def _job_finished(self, _job: int, status: str) -> None:
        if _job != self.worker.latest_job:  # replaced by a newer job: the window shows that one
            if self._job_names.pop(_job, "") != "cached":  # the automatic one is no run of theirs
                self.jobDone.emit(_job, status)
            return
        self._job_names.pop(_job, None)
        self._prediction_updates.flush()
        self._progress_updates.discard()
        self.running = False
        self.window.controls.set_running(False)
        self.window.progress.hide()
        self.window.status.setText(self._finished_text(status))
        self._show_demo_accuracy()
        self.reviewing.job_finished(status)
        self.jobDone.emit(_job, status)

    def _finished_text(self, status: str) -> str:
        """What the status bar says when a job ends (failed files are not counted as labeled)."""
        failed = len(self.review.failed)
        n = len(self.review.paths) - failed
        took = time.perf_counter() - self.job_started_at
        method = self.window.controls.settings()["method"]
        also = f"; {failed:,} could not be read (see Failed files)" if failed else ""
        if status == "failed":
            return "Labeling failed: see the message above."
        if status == "cancelled":
            return f"Stopped. {n:,} images labeled so far{also}."
        if getattr(self, "job_name", "") == "cached":
            waiting = max(0, self.folder_total - n - failed)
            if waiting:
                return (
                    f"Showing the saved predictions of {n:,} images; {waiting:,} are not labeled "
                    "yet: press “Label folder”."
                )
            return f"Showing the saved predictions of {n:,} images{also}."
        if self.folder_total == 0 and self.labeled_folder:
            self.show_error(f"No images found in {self.labeled_folder} (nor in its sub-folders).")
            return f"No images found in {self.labeled_folder}."
        return (
            f"Labeled {n:,} images with {method} ({took:.1f} s){also}. Correct any label: keys "
            "1–9, Enter accepts; sort by least confident to review."
        )

    def _progress(self, p) -> None:
        if p.stage == "labeling":
            self.folder_total = p.total
        self._progress_updates.push(p)

    def _show_progress(self, p) -> None:
        bar = self.window.progress
        bar.setMaximum(max(1, p.total))
        bar.setValue(p.done)
        stage = {"examples": "Embedding examples", "labeling": "Labeling"}.get(p.stage, p.stage)
        rate = f" · {p.items_per_s:,.0f} images/s" if p.items_per_s else ""
        eta = f" · {_duration(p.eta_s)} left" if p.done < p.total else ""
        self.window.status.setText(f"{stage}: {p.done:,} / {p.total:,}{rate}{eta}")

    def _predictions(self, predictions) -> None:
        if predictions.classes:
            self.fitted_classes = list(predictions.classes)
        self._prediction_updates.push(predictions)

    def _show_predictions(self, batches: list) -> None:
        """Apply waiting predictions (in arrival order) to the grid."""
        model = self.window.grid.model
        count = 0
        for predictions in batches:
            model.update_predictions(predictions)
            count += len(predictions.paths)
        self.predictions_seen += count
        self.reviewing.predictions_shown(self.running)
        if not self.running:
            self._show_demo_accuracy()  # a correction re-labeled the demo
        self.predictionsShown.emit(count)

    def _show_demo_accuracy(self) -> None:
        """On the demo folder, say how many labels are right: the demo knows every true class."""
        from fewshot_gui.data.demo import accuracy_line, demo_truth

        truth = demo_truth(self.labeled_folder) if self.labeled_folder else None
        if not truth:
            return
        self._prediction_updates.flush()
        review = self.review
        labels = {p: review.label(i) for i, p in enumerate(review.paths) if i not in review.failed}
        self.show_message(accuracy_line(truth, labels))

    def _folder_changed(self) -> None:
        """Failed files belong to the folder they were found in."""
        folder = self.window.controls.settings()["folder"]
        if not self.running and folder and os.path.abspath(folder) != self.labeled_folder:
            self.window.failed.clear()

    def _failures(self, failures: list) -> None:
        self._prediction_updates.flush()
        self.window.failed.add(failures)
        in_folder = [
            f for f in failures if self.labeled_folder and f.path.startswith(self.labeled_folder)
        ]
        if in_folder:
            self.window.grid.model.add_failures(in_folder)

    # ------------------------------------------------------------------ plot ↔ grid
    def _embeddings(self, paths: list, vectors) -> None:
        self._prediction_updates.flush()  # every embedded image has its grid cell first
        if not self.reviewing.set_embeddings(paths, vectors):
            self.window.load_plot_soon()  # still loading: it gets the points when built

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
        """Another project replaces this one: stop labeling, forget its images."""
        self.worker.cancel()
        self._prediction_updates.discard()
        self.fitted_classes = []
        self.labeled_folder = ""
        self.window.grid.model.clear()
        self.window.failed.clear()

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

    # ------------------------------------------------------------------ export
    def label_rows(self) -> list[LabelRow]:
        return self.review.label_rows()

    def export_labels(self, path: str) -> bool:
        """Write the labels alone (no images): ``.json`` → JSON, else CSV (``.csv`` added)."""
        rows = self.label_rows()
        if not rows:
            self.show_error("Nothing to export yet: label a folder first.")
            return False
        if not path.lower().endswith((".csv", ".json")):
            path += ".csv"
        try:
            written = write_labels(rows, path)  # the one labels writer (escaped, atomic)
        except (OSError, FewShotError) as error:
            reason = error.strerror if isinstance(error, OSError) else None
            self.show_error(f"could not write {path}: {reason or error}")
            return False
        self.settings.set_last("labelsFile", str(written))
        users = sum(r.source == "user" for r in rows)
        self.show_message(
            f"Wrote the labels of {len(rows):,} images ({users:,} yours) to {written}"
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
            self.show_error("Nothing to export yet: label a folder first.")
            return
        self.window.status.setText(f"Exporting {len(rows):,} images…")
        self.exporter.export(rows, dest, mode, unknown, labels)

    def ask_export(self) -> None:
        rows = self.label_rows()
        if not rows:
            self.show_error("Nothing to export yet: label a folder first.")
            return
        dialog = ExportDialog(len(rows), self.settings.last("exportDest"), self.window)
        if dialog.exec():
            opts = dialog.options()
            if not opts["dest"]:
                self.show_error("Choose a destination folder for the export.")
                return
            self.settings.set_last("exportDest", opts["dest"])
            self.export(**opts)

    def undo_export(self, journal: str) -> None:
        self.exporter.undo(journal)

    def ask_undo_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.window,
            "Export folder to undo",
            os.path.dirname(self.last_journal) if self.last_journal else "",
        )
        if folder:
            self.undo_export(folder)

    def _export_done(self, result) -> None:
        if isinstance(result, ExportResult):
            self.last_journal = str(result.journal)
        text, error = result_message(result)
        self.show_message(text, error=error)
        self.window.status.setText("Ready")

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
        self._prediction_updates.stop()
        self._progress_updates.stop()
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
