"""The labeling worker: one QThread, one QObject, the ONLY owner of the labeling session (and model).

The GUI thread talks to it with queued signals (see :class:`LabelingController`); the worker resumes
the session's generators one step per event-loop turn, so a cancel or a new command queued by the
GUI is seen between two batches. A new job closes the old job's generator first. Torch is imported
only here, inside the worker thread: right after the window shows (``reportChoices``) and when a
session is created, in ways that keep the GUI thread responsive (see ``qt/warmup.py``).
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from fewshot_gui.qt.warmup import gc_paused, lower_thread_priority, preload_native_libraries
from fewshot_gui.workers.engine_calls import (
    SessionFactory,
    available_choices,
    default_session_factory,
    is_plain_error,
    method_help,
    unusable_encoders,
    user_message,
)

REVIEWED_KEY = "\x00reviewed"
"""Key of the support dict sent to the worker that lists the review labels' paths (a class name
cannot hold a NUL)."""


class LabelingWorker(QObject):
    """Lives in the worker thread. Slots are invoked through queued connections only."""

    progress = Signal(object)  # Progress
    predictions = Signal(object)  # Predictions (partial: one batch; or full after a correction)
    failures = Signal(list)  # list[FileFailure]
    embeddings = Signal(object, object)  # paths list (not converted: a million), (N, D) float32
    error = Signal(str)  # a plain message for the user
    warning = Signal(str)  # a plain line about a problem that did not stop the job (cache rebuilt)
    deviceReady = Signal(str)
    methodChosen = Signal(str, str)  # details ("auto → memory (LOO accuracy: …)"), plain reason
    # method names, encoder names, {method: help line}, {encoder: why it is unusable now}
    choicesReady = Signal(list, list, dict, dict)
    jobStarted = Signal(int, str)
    jobFinished = Signal(int, str)  # job id, "done" | "cancelled" | "failed"
    _stepRequested = Signal()

    def __init__(self, factory: SessionFactory | None = None) -> None:
        super().__init__()
        self._factory = factory or default_session_factory
        self._session: Any = None
        self._session_key: tuple | None = None
        self._job: Iterator[Any] | None = None
        self._job_id = 0
        self._job_name = ""
        self._prepared = False
        self.abort = threading.Event()  # set from the GUI thread: checked between yields
        self._stepRequested.connect(self._step, Qt.ConnectionType.QueuedConnection)

    # ------------------------------------------------------------------ session
    def _prepare_thread(self) -> None:
        """Once, in the worker thread: yield the CPU to the GUI thread, load torch's libraries."""
        if not self._prepared:
            self._prepared = True
            lower_thread_priority()
            preload_native_libraries()

    def _ensure_session(self, settings: dict) -> Any:
        key = tuple(sorted((k, repr(v)) for k, v in settings.items() if k != "folder"))
        if self._session is None or key != self._session_key:
            self._close_session()
            self._prepare_thread()
            with gc_paused():  # the model's imports and objects: no collector pauses
                self._session = self._factory(settings)
                self._session_key = key
                with contextlib.suppress(AttributeError):  # Stop is seen between small pieces
                    self._session.should_stop = self.abort.is_set
                device = str(self._session.device_name)  # loads the encoder
            self.deviceReady.emit(device)
        return self._session

    def _close_session(self) -> None:
        if self._session is not None and hasattr(self._session, "close"):
            with contextlib.suppress(Exception):
                self._session.close()
        self._session = None

    # ------------------------------------------------------------------ jobs
    def _begin(self, job_id: int, name: str, job: Iterator[Any]) -> None:
        self._end("cancelled")
        self.abort.clear()
        self._job, self._job_id, self._job_name = job, job_id, name
        self.jobStarted.emit(job_id, name)
        self._stepRequested.emit()

    def _end(self, status: str) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        with contextlib.suppress(Exception):
            job.close()
        self.jobFinished.emit(self._job_id, status)

    @Slot()
    def _step(self) -> None:
        """Resume the current job by one item and schedule the next step."""
        if self._job is None:
            return
        if self.abort.is_set():
            self._end("cancelled")
            return
        try:
            item = next(self._job)
        except StopIteration:
            self._end("done")
            return
        except Exception as error:  # the engine's plain message, or an unexpected one
            if self.abort.is_set():  # StopRequested (or anything while stopping): cancelled
                self._end("cancelled")
                return
            if not is_plain_error(error):
                traceback.print_exc()
            self.error.emit(user_message(error))
            self._end("failed")
            return
        self._emit_item(item)
        self._stepRequested.emit()

    def _emit_item(self, item: Any) -> None:
        if item is None:
            return
        if hasattr(item, "done") and hasattr(item, "total"):
            self.progress.emit(item)
        elif hasattr(item, "predictions") and hasattr(item, "failures"):
            self.predictions.emit(item.predictions)
            self._emit_method()
            if item.failures:
                self.failures.emit(list(item.failures))
        elif hasattr(item, "paths") and hasattr(item, "probabilities"):
            self.predictions.emit(item)

    def _run_job(
        self,
        settings: dict,
        support: Mapping[str, Sequence[str]],
        folder: str | None,
        cached_only: bool = False,
    ) -> Iterator[Any]:
        """``support[REVIEWED_KEY]``, when present: the paths of the support set that were
        labeled while reviewing (see ``LabelingSession.add_example``), not a class."""
        session = self._ensure_session(settings)
        reviewed = support.get(REVIEWED_KEY, ())
        examples = {k: list(v) for k, v in support.items() if k != REVIEWED_KEY}
        yield from session.set_support(examples, reviewed)
        failures = getattr(session, "failures", None)
        if failures:
            self.failures.emit(list(failures.values()))
        if folder and cached_only:
            yield from session.label(folder, cached_only=True)
        elif folder:
            yield from session.label(folder)
        else:
            yield session.predictions()
        self._emit_embeddings()
        take = getattr(session, "take_warnings", None)
        for line in take() if callable(take) else []:
            self.warning.emit(line)

    def _emit_embeddings(self) -> None:
        if self._session is None:
            return
        paths, vectors = self._session.embeddings()
        if len(paths):
            self.embeddings.emit(list(paths), vectors)

    # ------------------------------------------------------------------ slots (queued)
    @Slot()
    def reportChoices(self) -> None:
        """Import the engine (called right after the window shows) and report its names."""
        self._prepare_thread()
        with gc_paused():
            methods, encoders = available_choices()
            helps = method_help()
            unusable = unusable_encoders(encoders)
            with contextlib.suppress(Exception):  # a broken engine reports itself on first use
                import fewshot_gui.session  # noqa: F401
        self.choicesReady.emit(methods, encoders, helps, unusable)

    @Slot(int, dict, dict, str, bool)
    def start(
        self, job_id: int, settings: dict, support: dict, folder: str, cached_only: bool = False
    ) -> None:
        """Fit the support set, then label ``folder`` (empty: just re-predict; ``cached_only``:
        only its images with cached embeddings, without decoding any)."""
        job = self._run_job(settings, support, folder or None, cached_only)
        self._begin(job_id, "cached" if cached_only else "label", job)

    @Slot(int, dict, dict)
    def refit(self, job_id: int, settings: dict, support: dict) -> None:
        """Re-fit the support set (after a rename or class deletion); predictions follow."""
        if self._session is None:
            return
        self._begin(job_id, "refit", self._run_job(settings, support, None))

    @Slot(list)
    def applyLabels(self, changes: list) -> None:
        """``[(path, label or None[, reviewed])]``: add as example of label (None: remove;
        ``reviewed``: a label given while reviewing); re-label once."""
        if self._session is None or not getattr(self._session, "classes", None):
            return
        result = None
        for path, label, *rest in changes:
            try:
                if label is None:
                    result = self._session.remove_example(path)
                else:
                    result = self._session.add_example(path, label, reviewed=bool(rest and rest[0]))
            except Exception as error:
                self.error.emit(user_message(error))
        if result is not None:
            self.predictions.emit(result)
            self._emit_method()

    def _emit_method(self) -> None:
        describe = getattr(self._session, "method_description", None)
        reason = getattr(self._session, "method_reason", None)
        if isinstance(describe, str) and describe:
            self.methodChosen.emit(describe, reason if isinstance(reason, str) else "")

    @Slot()
    def requestEmbeddings(self) -> None:
        self._emit_embeddings()

    @Slot()
    def cancel(self) -> None:
        self._end("cancelled")

    @Slot()
    def shutdown(self) -> None:
        self._end("cancelled")
        self._close_session()


class LabelingController(QObject):
    """GUI-thread handle: owns the worker thread and forwards commands as queued signals."""

    _start = Signal(int, dict, dict, str, bool)
    _refit = Signal(int, dict, dict)
    _apply = Signal(list)
    _cancel = Signal()
    _embeddings = Signal()
    _choices = Signal()
    _shutdown = Signal()

    def __init__(
        self, factory: SessionFactory | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("labeling-worker")
        self.worker = LabelingWorker(factory)
        self.worker.moveToThread(self.thread)
        queued = Qt.ConnectionType.QueuedConnection
        self._start.connect(self.worker.start, queued)
        self._refit.connect(self.worker.refit, queued)
        self._apply.connect(self.worker.applyLabels, queued)
        self._cancel.connect(self.worker.cancel, queued)
        self._embeddings.connect(self.worker.requestEmbeddings, queued)
        self._choices.connect(self.worker.reportChoices, queued)
        self._shutdown.connect(self.worker.shutdown, queued)
        self._next_id = 0
        self.thread.start()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @property
    def latest_job(self) -> int:
        """The id of the job asked for last; jobs before it end as superseded."""
        return self._next_id

    def start(
        self,
        settings: dict,
        support: Mapping[str, Sequence[str]],
        folder: str,
        cached_only: bool = False,
        reviewed: Sequence[str] = (),
    ) -> int:
        """Cancel any running job and start fitting + labeling; returns the job id.
        ``reviewed``: the paths of ``support`` labeled while reviewing (corrections, accepts)."""
        self.worker.abort.set()  # seen between two yields (or model pieces) of the old job
        job_id = self._new_id()
        support = {k: list(v) for k, v in support.items()}
        support[REVIEWED_KEY] = [str(p) for p in reviewed]
        self._start.emit(job_id, dict(settings), support, folder or "", bool(cached_only))
        return job_id

    def refit(
        self, settings: dict, support: Mapping[str, Sequence[str]], reviewed: Sequence[str] = ()
    ) -> int:
        self.worker.abort.set()
        job_id = self._new_id()
        support = {k: list(v) for k, v in support.items()}
        support[REVIEWED_KEY] = [str(p) for p in reviewed]
        self._refit.emit(job_id, dict(settings), support)
        return job_id

    def apply_labels(self, changes: Sequence[tuple]) -> None:
        """``[(path, label or None[, reviewed])]``: see :meth:`LabelingWorker.applyLabels`."""
        self._apply.emit([(str(c[0]), *c[1:]) for c in changes])

    def cancel(self) -> None:
        self.worker.abort.set()
        self._cancel.emit()

    def request_embeddings(self) -> None:
        self._embeddings.emit()

    def request_choices(self) -> None:
        self._choices.emit()

    def stop(self, timeout_ms: int = 5000) -> None:
        """Cancel, release the session and end the thread (call before the app quits)."""
        if not self.thread.isRunning():
            return
        self.worker.abort.set()
        self._shutdown.emit()
        self.thread.quit()
        self.thread.wait(timeout_ms)
