"""A labeling job as the window shows it.

:class:`LabelingRun` starts, re-fits and stops the worker's jobs, keeps the session's support set in
step with the classes (a correction re-labels, a new or renamed class re-fits), and brings what
the worker reports into the window: predictions into the grid and progress into the status bar,
coalesced so that the GUI thread paints at most every :data:`UPDATE_MS`; failed files into the
failed list; embeddings to the embedding view; a last line when the job ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from fewshot_gui.qt.throttle import Coalescer
from fewshot_gui.ui.status_text import JobEnd, finished_text, progress_text

UPDATE_MS = 100
"""Partial predictions and progress reach the window at most this often (ms)."""


class LabelingRun(QObject):
    """The labeling jobs of one window. ``worker`` is the :class:`LabelingController`;
    ``session_settings()`` the settings a job's session is built with.

    ``jobDone`` and ``predictionsShown`` are emitted in the GUI thread after the window has been
    updated. Anything that reads the grid's model flushes the waiting predictions first.
    """

    jobDone = Signal(int, str)
    predictionsShown = Signal(int)

    def __init__(
        self,
        window: Any,
        state: Any,
        worker: Any,
        reviewing: Any,
        session_settings: Callable[[], dict],
        show_error: Callable[[str], None],
        show_message: Callable[[str], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.window, self.state, self.review = window, state, state.review
        self.worker, self.reviewing = worker, reviewing
        self.session_settings = session_settings
        self.show_error, self.show_message = show_error, show_message
        self.fitted_classes: list[str] = []
        self.labeled_folder = ""
        self.folder_total = -1
        self.job_name = ""
        self._job_names: dict[int, str] = {}
        self.running = False
        self.job_started_at = 0.0
        self.predictions_seen = 0
        self._prediction_updates = Coalescer(self._show_predictions, UPDATE_MS, self)
        self._progress_updates = Coalescer(
            lambda items: self._show_progress(items[-1]), UPDATE_MS, self
        )
        self._wire()

    def _wire(self) -> None:
        """Only methods of this QObject: the worker's signals then arrive in the GUI thread."""
        state, controls, wk = self.state, self.window.controls, self.worker.worker
        state.supportEdited.connect(self._support_edited)
        state.classesChanged.connect(self._classes_changed)
        controls.startRequested.connect(self.start)
        controls.stopRequested.connect(self.stop)
        controls.settingsChanged.connect(self._folder_changed)
        wk.progress.connect(self._progress)
        wk.predictions.connect(self._predictions)
        wk.failures.connect(self._failures)
        wk.embeddings.connect(self._embeddings)
        wk.jobStarted.connect(self._job_started)
        wk.jobFinished.connect(self._job_finished)

    def flush(self) -> None:
        """Show the predictions still waiting (before reading the grid's model)."""
        self._prediction_updates.flush()

    def reset(self) -> None:
        """Another project replaces this one: stop labeling, forget its images."""
        self.worker.cancel()
        self._prediction_updates.discard()
        self.fitted_classes = []
        self.labeled_folder = ""
        self.window.grid.model.clear()
        self.window.failed.clear()

    def close(self) -> None:
        """No more updates (the app is shutting down)."""
        self._prediction_updates.stop()
        self._progress_updates.stop()

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
            review = self.review
            self.worker.apply_labels(
                [(p, lab, review.is_review_label(p, lab)) for p, lab in changes]
            )

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
        reviewed = self.state.review_labels()
        self.worker.start(self.session_settings(), support, folder, cached_only, reviewed)
        return True

    def refit(self) -> None:
        support = self.state.support()
        if support:
            self.worker.refit(self.session_settings(), support, self.state.review_labels())

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
        """What the status bar says when a job ends (see :func:`finished_text`)."""
        failed = len(self.review.failed)
        end = JobEnd(
            status,
            getattr(self, "job_name", ""),
            len(self.review.paths) - failed,
            failed,
            self.folder_total,
            self.labeled_folder,
            self.window.controls.settings()["method"],
            time.perf_counter() - self.job_started_at,
        )
        if status == "done" and end.job != "cached" and end.folder_total == 0 and end.folder:
            self.show_error(f"No images found in {end.folder} (nor in its sub-folders).")
        return finished_text(end)

    def _progress(self, p) -> None:
        if p.stage == "labeling":
            self.folder_total = p.total
        self._progress_updates.push(p)

    def _show_progress(self, p) -> None:
        bar = self.window.progress
        bar.setMaximum(max(1, p.total))
        bar.setValue(p.done)
        self.window.status.setText(progress_text(p))

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

    def _embeddings(self, paths: list, vectors) -> None:
        self._prediction_updates.flush()  # every embedded image has its grid cell first
        if not self.reviewing.set_embeddings(paths, vectors):
            self.window.load_plot_soon()  # still loading: it gets the points when built
