"""Every image of the labeled folder as whole arrays: path ↔ base index, label code, confidence,
unknown score and failure reason (:class:`ImageTable`).

Merging predictions costs numpy and C-level passes over the arrays, and Python work only for the
images that are new: a re-label of a million images after a correction (the same paths again)
maps them to their rows with one list comparison, and takes their label codes from one dict
lookup per image done in C. :meth:`ImageTable.filled` builds a table in any thread (its long
passes are cut in chunks, so the GUI thread is never kept from the GIL for long) for
:meth:`~fewshot_gui.review.ReviewModel.replace_images` to adopt at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np

from fewshot_gui.core.types import UNKNOWN, FileFailure, Predictions
from fewshot_gui.review.constants import PENDING

CHUNK = 100_000
"""Paths indexed per call while a table is filled in a thread (the GIL is free in between)."""
REMEMBER = 10_000
"""The rows of a merge of at least this many paths are remembered (with the list of paths, which
is never changed once in a Predictions): a re-label after each correction sends the same paths
again, and finds its rows by one list comparison (the same string objects: pointer compares)."""


class ImageTable:
    """``paths`` (N,) with ``index_of`` (path → base index), ``codes`` (N,) int32 into
    ``code_names`` (:data:`PENDING` while not predicted), ``conf`` (N,) float32, ``unknown`` (N,)
    float32 (NaN while not computed), ``failed`` (base index → reason)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.index_of: dict[str, int] = {}
        self.code_names: list[str] = []
        self._code: dict[str, int] = {}
        self.codes = np.zeros(0, np.int32)
        self.conf = np.zeros(0, np.float32)
        self.unknown = np.zeros(0, np.float32)
        self.failed: dict[int, str] = {}
        self._last: tuple[list[str], np.ndarray] | None = None  # (paths, rows) of a large merge

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def filled(cls, predictions: Predictions, failures: Sequence[FileFailure] = ()) -> ImageTable:
        """A table of ``predictions`` then ``failures`` (what :meth:`merge` and
        :meth:`add_failures` would make of an empty table), built in any thread."""
        table = cls()
        paths = [*predictions.paths, *(f.path for f in failures)]
        index: dict[str, int] = {}
        for start in range(0, len(paths), CHUNK):
            stop = min(start + CHUNK, len(paths))
            index.update(zip(paths[start:stop], range(start, stop), strict=True))
        if len(index) != len(paths):  # a path twice: merge them one after the other
            table.merge(predictions)
            table.add_failures(failures)
            return table
        table.paths, table.index_of = paths, index
        table._extend(len(paths))
        rows = np.arange(len(predictions.paths), dtype=np.int64)
        table._set(rows, predictions)
        done = len(predictions.paths)
        table.failed = {done + k: f.reason for k, f in enumerate(failures)}
        return table

    # ------------------------------------------------------------------ label codes
    def code_of(self, name: str) -> int:
        """The code of label ``name`` (a new one the first time)."""
        code = self._code.get(name)
        if code is None:
            code = self._code[name] = len(self.code_names)
            self.code_names.append(name)
        return code

    def find_code(self, name: str) -> int | None:
        return self._code.get(name)

    def _label_codes(self, predictions: Predictions) -> np.ndarray:
        """``(n,)`` int32 codes of the predicted labels (one C-level dict lookup per image)."""
        labels, n = predictions.labels, len(predictions.paths)
        if len(labels) != n:  # no labels given: the top class
            lookup = np.array([self.code_of(c) for c in predictions.classes], np.int32)
            return lookup[np.asarray(predictions.probabilities).argmax(axis=1)]
        names = {name: self.code_of(name) for name in (*predictions.classes, UNKNOWN)}
        try:
            return np.fromiter(map(names.__getitem__, labels), np.int32, n)
        except KeyError:  # a label that is no class: give it a code too
            names.update((name, self.code_of(name)) for name in set(labels))
            return np.fromiter(map(names.__getitem__, labels), np.int32, n)

    # ------------------------------------------------------------------ rows
    def rows(self, paths: Sequence[str]) -> np.ndarray:
        """``(n,)`` int64 base indices of ``paths``, appending unknown ones (pending)."""
        n = len(paths)
        if not n:
            return np.zeros(0, np.int64)
        if not self.paths:
            index = dict(zip(paths, range(n), strict=True))
            if len(index) == n:  # a first fill of distinct paths: their rows in order
                self.paths, self.index_of = list(paths), index
                self._extend(n)
                return np.arange(n, dtype=np.int64)
        last = self._last
        if last is not None and len(last[0]) == n and last[0] == paths:
            return last[1]  # the paths of the previous re-label again
        if self.is_prefix(paths):  # the first images, in order (a folder's first re-label)
            found = np.arange(n, dtype=np.int64)
            if n >= REMEMBER:
                self._last = (paths if isinstance(paths, list) else list(paths), found)
            return found
        found = np.fromiter(map(self.index_of.get, paths, repeat(-1)), np.int64, n)
        missing = np.flatnonzero(found < 0).tolist()
        if missing:  # Python work for the new images only
            new = list(dict.fromkeys(paths[k] for k in missing))
            start = len(self.paths)
            self.index_of.update(zip(new, range(start, start + len(new)), strict=True))
            self.paths.extend(new)
            self._extend(len(new))
            found[missing] = [self.index_of[paths[k]] for k in missing]
        if n >= REMEMBER:
            self._last = (paths if isinstance(paths, list) else list(paths), found)
        return found

    def is_prefix(self, paths: Sequence[str]) -> bool:
        """``paths`` are the first ``len(paths)`` images, in order (C-level comparisons)."""
        n, mine = len(paths), self.paths
        if not n:
            return True
        if n > len(mine) or mine[0] != paths[0] or mine[n - 1] != paths[-1]:
            return False
        return (mine if n == len(mine) else mine[:n]) == list(paths)

    def _extend(self, count: int) -> None:
        """Room for ``count`` more images: pending, no confidence, no unknown score."""
        self.codes = np.concatenate([self.codes, np.full(count, PENDING, np.int32)])
        self.conf = np.concatenate([self.conf, np.zeros(count, np.float32)])
        self.unknown = np.concatenate([self.unknown, np.full(count, np.nan, np.float32)])

    # ------------------------------------------------------------------ merging
    def merge(self, predictions: Predictions) -> np.ndarray:
        """Take ``predictions`` (a batch, or every image after a correction); returns their base
        indices. A failed file that is predicted now is no longer failed."""
        rows = self.rows(predictions.paths)
        self._set(rows, predictions)
        if self.failed:
            failed = np.fromiter(self.failed, np.int64, len(self.failed))
            hit = np.zeros(len(self.paths), bool)
            hit[rows] = True
            for row in failed[hit[failed]].tolist():
                del self.failed[row]
        return rows

    def _set(self, rows: np.ndarray, predictions: Predictions) -> None:
        self.codes[rows] = self._label_codes(predictions)
        self.conf[rows] = np.asarray(predictions.confidences, np.float32)
        scores = getattr(predictions, "unknown_scores", ())
        if len(scores) == len(rows):
            self.unknown[rows] = scores

    def add_failures(self, failures: Iterable[FileFailure]) -> np.ndarray:
        """Mark files that failed; returns their base indices."""
        failures = list(failures)
        rows = self.rows([f.path for f in failures])
        for row, failure in zip(rows.tolist(), failures, strict=True):
            self.failed[row] = failure.reason
        return rows

    def failed_rows(self) -> np.ndarray:
        """``(F,)`` int64 base indices of the failed files."""
        return np.fromiter(self.failed, np.int64, len(self.failed))
