"""The second pass of a cluster run: what needs the whole folder, over the stored embeddings.

The local session may relax its unknown score to the folder's own images and refine the class
prototypes on the folder's embeddings (transductive, issue 15) before it gives its final labels; a
cluster run cannot do that batch by batch. Once every image has a row, :func:`refine_result` builds
a :class:`~fewshot_gui.cluster.stored.StoredSession` over the result's embeddings — the local
session's own code, on the same half-precision embeddings — and rewrites each shard's label,
confidence, probability and unknown-score columns from its predictions (each shard atomically; the
pass is repeated whole by a re-run, so a kill during it is harmless). Images are never read again.
Memory: the whole folder's embeddings as float32 on the driver (``N × D × 4`` bytes); beyond a few
million images this pass needs the session's sample and refined prototypes applied shard by shard
instead (the refinement itself uses a fixed-size sample).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fewshot_gui.cluster.result import LabelingResult
from fewshot_gui.cluster.shards import ResultFolder
from fewshot_gui.cluster.stored import StoredSession
from fewshot_gui.core.atomic import atomic_open


def needs_folder(session: object) -> bool:
    """True when ``session``'s final labels need the whole folder (the unknown score relaxed to
    the folder, prototype refinement: :meth:`~fewshot_gui.session.LabelingSession.uses_folder`)."""
    uses = getattr(session, "uses_folder", None)
    return bool(callable(uses) and uses())


def refine_result(root: str | os.PathLike[str]) -> int:
    """Re-predict every labeled row of the result at ``root``; returns how many rows."""
    result = LabelingResult.open(root)
    predictions = StoredSession(result).predictions()
    index = {p: i for i, p in enumerate(predictions.paths)}
    labels = np.array(predictions.labels, object)
    scores = np.asarray(getattr(predictions, "unknown_scores", ()), np.float32)
    if len(scores) != len(labels):
        scores = np.full(len(labels), np.nan, np.float32)
    for shard in ResultFolder(root).shard_files():
        table = pq.read_table(shard)
        rows = np.array([index.get(p, -1) for p in table.column("path").to_pylist()], np.int64)
        hit = rows >= 0
        if not hit.any():
            continue
        new = {
            "label": _replaced(table, "label", hit, labels[rows[hit]]),
            "confidence": _replaced(table, "confidence", hit, predictions.confidences[rows[hit]]),
            "unknown_score": _replaced(table, "unknown_score", hit, scores[rows[hit]]),
        }
        probs = table.column("probabilities").combine_chunks()
        matrix = probs.flatten().to_numpy(zero_copy_only=False).reshape(len(rows), -1).copy()
        matrix[hit] = predictions.probabilities[rows[hit]]
        new["probabilities"] = pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.ravel().astype(np.float32)), matrix.shape[1]
        )
        for name, column in new.items():
            table = table.set_column(table.schema.get_field_index(name), name, column)
        with atomic_open(shard, "wb") as handle:
            pq.write_table(table, handle)
    return len(labels)


def _replaced(table: pa.Table, name: str, hit: np.ndarray, values: np.ndarray) -> pa.Array:
    column = table.column(name).to_numpy(zero_copy_only=False).copy()
    column[hit] = values
    return pa.array(column, table.schema.field(name).type)
