"""Read a labeling run's output folder (:mod:`.shards`) back: for ``--csv``, the app and tests.

:class:`LabelingResult` holds the small columns of every row in memory as numpy (1,000,000 rows
with 10 classes: ~150 MB, most of it the paths; labels and reasons share one string object per
value); embeddings are read only when asked for, as one ``(N, D)`` float16 matrix. Rows are in
path order, each path once (the newest row wins, should a path ever appear in two shards).
No Ray, no torch, no Qt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fewshot_gui.cluster.shards import ResultFolder, RunInfo
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure, Predictions

SMALL_COLUMNS = ["path", "label", "confidence", "unknown_score", "error", "probabilities"]
CONVERT_ROWS = 50_000
"""Rows of a string column turned into Python strings per call."""


@dataclass
class LabelingResult:
    """Every row of a result: ``paths`` (N,) object, ``labels`` (N,) object (empty where failed),
    ``confidences`` / ``unknown_scores`` (N,) float32 (NaN where failed or not computed),
    ``errors`` (N,) object, ``probabilities`` (N, C) float32 over ``info.classes``."""

    root: Path
    info: RunInfo
    paths: np.ndarray
    labels: np.ndarray
    confidences: np.ndarray
    unknown_scores: np.ndarray
    errors: np.ndarray
    probabilities: np.ndarray
    _order: np.ndarray | None = None  # rows of the concatenated shards, in path order

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> LabelingResult:
        """Read ``root``; UsageError (one line) when it is not a usable result."""
        folder = ResultFolder(root)
        info = folder.info()
        if info is None:
            raise UsageError(f"{folder.root} is not a labeling result (no run.json)")
        table = _read(folder, SMALL_COLUMNS)
        order = _path_order(table.column("path"))
        table = table.take(order)
        n, c = table.num_rows, len(info.classes)
        return cls(
            folder.root,
            info,
            _strings(table.column("path")),
            _categories(table.column("label")),
            _floats(table.column("confidence")),
            _floats(table.column("unknown_score")),
            _categories(table.column("error")),
            _matrix(table.column("probabilities"), np.float32).reshape(n, c),
            order,
        )

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def classes(self) -> list[str]:
        return list(self.info.classes)

    def failed_mask(self) -> np.ndarray:
        """(N,) bool: rows with an error (not labeled)."""
        return self.errors.astype(bool)

    def label_counts(self) -> dict[str, int]:
        labels = self.labels[~self.failed_mask()]
        names, counts = np.unique(labels.astype(str), return_counts=True)
        return {str(k): int(v) for k, v in zip(names, counts, strict=True)}

    def predictions(self) -> Predictions:
        """The labeled rows as :class:`Predictions` (labels as stored)."""
        ok = ~self.failed_mask()
        found = Predictions(
            list(self.paths[ok]),
            self.classes,
            self.probabilities[ok],
            list(self.labels[ok]),
            self.confidences[ok],
        )
        scores = self.unknown_scores[ok]
        if hasattr(found, "unknown_scores") and not np.isnan(scores).all():
            found.unknown_scores = scores  # the open-set score (issue 15), where computed
        return found

    def failures(self) -> list[FileFailure]:
        bad = self.failed_mask()
        return [FileFailure(p, e) for p, e in zip(self.paths[bad], self.errors[bad], strict=True)]

    def embeddings(self) -> np.ndarray:
        """``(N, D)`` float16 embeddings in row order (NaN rows where failed); UsageError when the
        run did not store them (``--embeddings``)."""
        if not self.info.embeddings:
            raise UsageError(
                f"{self.root} holds no embeddings (label with --embeddings to review corrections)"
            )
        column = _read(ResultFolder(self.root), ["embedding"]).column("embedding")
        matrix = _matrix(column, np.float16).reshape(-1, self.info.embed_dim)
        return matrix if self._order is None else matrix[self._order]

    def support(self) -> tuple[list[tuple[str, str]], np.ndarray]:
        """The support set: ``(path, class)`` pairs and their ``(S, D)`` float32 embeddings."""
        with np.load(self.root / "support.npz", allow_pickle=False) as data:
            vectors = np.asarray(data["embeddings"], np.float32)
        return list(self.info.support), vectors


def _read(folder: ResultFolder, columns: list[str]) -> pa.Table:
    shards = folder.shard_files()
    try:
        tables = [pq.read_table(s, columns=columns) for s in shards]
    except Exception as error:
        raise UsageError(f"cannot read the shards of {folder.root} ({error})") from None
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns}).cast(
            _empty_schema(columns, folder)
        )
    return pa.concat_tables(tables)


def _empty_schema(columns: list[str], folder: ResultFolder) -> pa.Schema:
    from fewshot_gui.cluster.shards import schema

    info = folder.info()
    assert info is not None
    full = schema(info.classes, info.embed_dim)
    return pa.schema([full.field(c) for c in columns])


def _path_order(paths: pa.ChunkedArray) -> np.ndarray:
    """Row indices sorting by path, keeping only the last row of a path seen twice (arrow
    compute: no Python objects)."""
    n = len(paths)
    order = pc.sort_indices(
        pa.table({"path": paths, "row": pa.array(np.arange(n))}),
        sort_keys=[("path", "ascending"), ("row", "descending")],
    ).to_numpy()
    if n < 2:
        return order
    ordered = paths.take(pa.array(order))
    first = np.ones(n, bool)
    same = pc.equal(ordered.slice(1), ordered.slice(0, n - 1))
    first[1:] = ~same.to_numpy(zero_copy_only=False).astype(bool)
    return order[first]


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """A string column as an object array, converted a slice at a time (each slice holds the GIL
    briefly, so a window in another thread stays responsive)."""
    out = np.empty(len(column), object)
    for start in range(0, len(column), CONVERT_ROWS):
        part = column.slice(start, CONVERT_ROWS)
        out[start : start + len(part)] = part.to_numpy(zero_copy_only=False)
    return out


def _categories(column: pa.ChunkedArray) -> np.ndarray:
    """A string column of few distinct values (labels, reasons) as an object array whose rows
    share one string object per value (no object per row; a null row is None)."""
    encoded = column.combine_chunks().dictionary_encode() if len(column) else None
    if encoded is None:
        return np.zeros(0, object)
    values = np.asarray([*encoded.dictionary.to_pylist(), None], dtype=object)  # None: null
    codes = encoded.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
    return values[codes]


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)


def _matrix(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    """A fixed-size list column → its flat values as numpy."""
    chunks = [c.flatten() for c in column.chunks] if column.num_chunks else []
    if not chunks:
        return np.zeros(0, dtype)
    return np.concatenate([c.to_numpy(zero_copy_only=False) for c in chunks]).astype(
        dtype, copy=False
    )
