"""One function call on a ``QThreadPool``, its result or error delivered as a signal.

The views run short jobs off the GUI thread this way (thumbnail decodes, projections, exports):
:class:`PoolRunner` owns a pool with a fixed number of threads; :meth:`PoolRunner.submit` queues
``fn()`` and :attr:`PoolRunner.done` / :attr:`PoolRunner.failed` bring back ``(tag, result)`` or
``(tag, message)`` in the GUI thread, where ``tag`` is whatever the caller passed to identify the
job (a path, a generation number). A job never raises into Qt: an exception becomes its message.

Why not superqt's ``create_worker``: its ``WorkerBase.run`` enters ``warnings.catch_warnings()``
and replaces ``warnings.showwarning`` in the worker thread; two overlapping jobs (the thumbnail
pool runs several) restore each other's state out of order and leave the process with an
``always`` filter and a dead worker's ``showwarning`` (checked with superqt 0.9). It also runs on
the global pool, where a view cannot bound its threads or drop what is queued.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    """Lives in the GUI thread; the pool threads emit through it (queued connections)."""

    done = Signal(object, object)  # tag, result
    failed = Signal(object, str)  # tag, plain message


class _Job(QRunnable):
    def __init__(self, tag: Hashable, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.tag, self.fn, self.relay = tag, fn, relay
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as error:  # any failure is a message, never a crash of the app
            with contextlib.suppress(RuntimeError):  # the owner may be gone by now
                self.relay.failed.emit(self.tag, str(error) or type(error).__name__)
            return
        with contextlib.suppress(RuntimeError):
            self.relay.done.emit(self.tag, result)


class PoolRunner(QObject):
    """Runs ``fn()`` calls on its own pool of ``threads`` threads; results come back as signals."""

    done = Signal(object, object)  # tag, what fn returned
    failed = Signal(object, str)  # tag, the exception's message

    def __init__(self, threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, threads))
        self._relay = _Relay()
        self._relay.done.connect(self.done)
        self._relay.failed.connect(self.failed)

    def submit(self, fn: Callable[[], Any], tag: Hashable = None) -> None:
        """Queue ``fn()``; :attr:`done` or :attr:`failed` says how it went, with ``tag``."""
        self.pool.start(_Job(tag, fn, self._relay))

    def clear(self) -> None:
        """Drop the queued (not yet started) calls; they emit nothing."""
        self.pool.clear()

    def wait(self, msecs: int = 5000) -> bool:
        """Block until every call has run (True) or ``msecs`` passed (False)."""
        return self.pool.waitForDone(msecs)
