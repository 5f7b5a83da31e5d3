"""Re-label latency with the unknown score and transductive refinement (issue 15.2/15.3).

A :class:`~fewshot_gui.session.LabelingSession` whose embedding table is filled with ``--images``
synthetic 1280-d embeddings (clusters, as an encoder gives; no model, no decoding), 5 classes of
``--shot`` examples. Per configuration, the median time of a correction → every image's new
prediction (``add_example`` then the predictions the app receives), side by side with what the
same correction cost before the unknown score (the adapter's ``add_example`` and ``predict_proba``
over every image, then :class:`~fewshot_gui.core.types.Predictions`), in one run.

    python benchmarks/transductive.py --images 10000 --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import numpy as np

from fewshot_gui.core.embedding_table import EmbeddingTable
from fewshot_gui.core.types import ImageRecord, Predictions
from fewshot_gui.session import LabelingSession

DIM = 1280


def synthetic_session(method: str, images: int, shot: int, transductive: bool) -> LabelingSession:
    """A session over ``images`` clustered embeddings, labeled, with ``shot`` examples of 5
    classes (the embeddings never touch a model or the disk)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, DIM))
    y = rng.integers(0, 5, images)
    x = (centres[y] + 1.5 * rng.normal(size=(images, DIM))).astype(np.float32)
    paths = [f"/bench/{i:06d}.jpg" for i in range(images)]
    session = LabelingSession(
        encoder="efficientnet-lite0", method=method, use_cache=False, transductive=transductive
    )
    session._loaded = mock.Mock(adapter_state=None)
    session._table = EmbeddingTable(DIM)
    session._table.add(paths, x)
    session._routed = True
    session._labeled, session._labeled_set = list(paths), set(paths)
    session._support = [
        (paths[i], f"c{y[i]}") for c in range(5) for i in np.flatnonzero(y == c)[:shot]
    ]
    session._fit()
    return session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--methods", default="metric,auto")
    args = parser.parse_args()
    print(f"{args.images} images, {DIM}-d, 5 classes, {args.shot}-shot; median of {args.repeats}")
    for method in args.methods.split(","):
        for transductive in (False, True):
            session = synthetic_session(method, args.images, args.shot, transductive)
            record = ImageRecord("/bench/000100.jpg", 0, 0)
            times, alone = [], []
            for r in range(args.repeats):
                label = f"c{r % 5}"
                with mock.patch("fewshot_gui.session.support.record_for", return_value=record):
                    t0 = time.perf_counter()
                    predictions = session.add_example(record.path, label)
                    times.append((time.perf_counter() - t0) * 1000)
                assert len(predictions.unknown_scores) == args.images
                table = session._table
                rows = table.rows(session._labeled)
                adapter = session._adapter
                features = table.features(rows, adapter.feature_kind(), adapter.query_features)
                t0 = time.perf_counter()
                adapter.add_example(table.vectors(rows)[100], label)
                probs = adapter.predict_proba(table.vectors(rows), features)
                Predictions.from_probabilities(session._labeled, adapter.classes, probs)
                alone.append((time.perf_counter() - t0) * 1000)
            mode = "refined on the folder" if session._refines() else "inductive"
            print(
                f"{method:>7} {mode:>22}: correction → predictions + unknown scores "
                f"{statistics.median(times):6.1f} ms; before (adapter + predictions only) "
                f"{statistics.median(alone):6.1f} ms"
            )


if __name__ == "__main__":
    main()
