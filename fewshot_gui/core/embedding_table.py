"""Every embedded image of a session: path → row of one growable buffer, plus per-row query features.

Re-labeling after a correction reads every embedding once, so the work done per embedding on each
re-label is what its latency is made of. Part of that work does not depend on the support set — a
query's norm, or its projection through a meta-learned query matrix — and is computed here once per
image (when it is first predicted) and kept beside its embedding, so that a re-label is one matrix
product (see :meth:`fewshot_gui.adapters.base.Adapter.query_features`). No torch, no Qt: the
features are computed by the callable the caller passes.

Rows are never moved or removed: a changed file that is embedded again overwrites its row (and
marks its features stale). Rows of images added together are contiguous, so the rows of a labeled
folder are a view of the buffer, not a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

FEATURE_CHUNK = 16384
"""Rows per call of the feature function (bounds its temporary memory)."""

FeatureFunction = Callable[[np.ndarray], np.ndarray]
"""``(n, D)`` float32 embeddings → ``(n, F)`` float32 features."""


class EmbeddingTable:
    """Embeddings ``(N, D)`` float32 by path, and cached features ``(N, F)`` of one *kind*."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._rows: dict[str, int] = {}
        self._buffer = np.empty((0, dim), np.float32)  # (capacity, D); rows [0, len) are used
        self._features: np.ndarray | None = None  # (capacity, F) for self._kind
        self._fresh = np.zeros(0, bool)  # (capacity,) features up to date
        self._kind: str | None = None
        self.overwrites = 0  # stored rows replaced so far: results cached per row are stale

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, path: object) -> bool:
        return path in self._rows

    def add(self, paths: Sequence[str], embeddings: np.ndarray) -> None:
        """Store ``embeddings`` (n, D) for ``paths``; a known path's row is overwritten."""
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(len(paths), self.dim)
        rows = np.empty(len(paths), np.int64)
        for i, path in enumerate(paths):
            row = self._rows.get(path)
            if row is None:  # new rows go to the end: images added together stay contiguous
                row = self._rows[path] = self._new_row()
            else:
                self.overwrites += 1
            rows[i] = row
        self._buffer[rows] = embeddings
        self._fresh[rows] = False

    def rows(self, paths: Sequence[str]) -> slice | np.ndarray:
        """Row indices of ``paths`` (all known): a slice when they are consecutive, in order."""
        if not paths:
            return slice(0, 0)
        first = self._rows[paths[0]]
        index = np.fromiter((self._rows[p] for p in paths), np.int64, len(paths))
        if index[-1] - first + 1 == len(paths) and (np.diff(index) == 1).all():
            return slice(first, first + len(paths))
        return index

    def vectors(self, rows: slice | np.ndarray) -> np.ndarray:
        """Embeddings ``(n, D)`` of :meth:`rows`; a view, not a copy, for a slice."""
        return self._buffer[rows]

    def features(
        self, rows: slice | np.ndarray, kind: str | None, compute: FeatureFunction
    ) -> np.ndarray | None:
        """Features ``(n, F)`` of ``kind`` for :meth:`rows` (None when ``kind`` is None).

        Rows whose features are missing or stale are computed with ``compute`` (in chunks of
        consecutive rows where possible); a new ``kind`` drops every cached feature.
        """
        if kind is None:
            return None
        if kind != self._kind:
            self._kind, self._features = kind, None
            self._fresh[:] = False
        stale = ~self._fresh[rows]
        if stale.any():
            self._compute(np.arange(len(self._fresh))[rows][stale], compute)
        return None if self._features is None else self._features[rows]

    def _compute(self, rows: np.ndarray, compute: FeatureFunction) -> None:
        """Fill the features of ``rows`` (increasing row indices) in chunks."""
        for start in range(0, len(rows), FEATURE_CHUNK):
            part = rows[start : start + FEATURE_CHUNK]
            contiguous = part[-1] - part[0] + 1 == len(part)
            x = self._buffer[part[0] : part[-1] + 1] if contiguous else self._buffer[part]
            values = np.asarray(compute(x), dtype=np.float32).reshape(len(part), -1)
            if self._features is None:
                self._features = np.zeros((len(self._buffer), values.shape[1]), np.float32)
            self._features[part] = values
            self._fresh[part] = True

    def _new_row(self) -> int:
        """Index of a new row, doubling the buffers when full (amortised O(1), no re-joining)."""
        count = len(self._rows)
        if count == len(self._buffer):
            capacity = max(1024, 2 * count)
            self._buffer = _grown(self._buffer, capacity)
            self._fresh = _grown(self._fresh, capacity)
            self._fresh[count:] = False
            if self._features is not None:
                self._features = _grown(self._features, capacity)
        return count


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    """``array`` copied into a new one of ``capacity`` rows (the extra rows uninitialised)."""
    out = np.empty((capacity, *array.shape[1:]), array.dtype)
    out[: len(array)] = array
    return out
