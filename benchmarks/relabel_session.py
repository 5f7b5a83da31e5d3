"""Correction → updated predictions through the real labeling session, per method.

Images (default): labels N small synthetic images once (Conv-4, random weights, embeddings cached
on disk), then for each method: a new session over the same cache, corrections
(``add_example(..., reviewed=True)``, as the app's keys send them) and the time until every image
has its new prediction (what the app waits for).

``--stored-dim D``: no images and no encoder: N synthetic embeddings of D dimensions (clustered,
a tenth of them of no class) in the session a labeling result opens (``StoredSession``: the same
support set, adapter, embedding table and re-label path as the app's session), each correction
timed with the prototypes refined on the folder and without; unknown scores are always computed.
The README's session figure:

    python benchmarks/relabel_session.py --images 10000
    python benchmarks/relabel_session.py --stored-dim 1280 --images 10000 --methods metric
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from fewshot_gui.adapters.registry import adapter_names
from fewshot_gui.bench.synthetic import make_tiny_images
from fewshot_gui.session import LabelingSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--methods", default=",".join(adapter_names()))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--stored-dim", type=int, default=0, help="synthetic embeddings, no images")
    parser.add_argument("--classes", type=int, default=10, help="with --stored-dim")
    args = parser.parse_args()
    if args.stored_dim:
        stored(args)
    else:
        images(args)


def timed(correct: Callable[[int], Any], repeats: int, n: int) -> float:
    """Median milliseconds of ``correct(r)`` (a correction returning the new predictions) after
    two untimed ones."""
    timings = []
    for r in range(-2, repeats):
        t0 = time.perf_counter()
        predictions = correct(r + 2)
        if r >= 0:
            timings.append((time.perf_counter() - t0) * 1000)
        assert len(predictions.paths) == n
    return statistics.median(timings)


def images(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "images", Path(tmp) / "cache"
        make_tiny_images(folder, args.images)
        paths = sorted(str(p) for p in folder.rglob("*.jpg"))
        support = {f"class{k}": paths[k * 7 : k * 7 + 3] for k in range(5)}
        start = time.perf_counter()
        for method in args.methods.split(","):
            session = LabelingSession(encoder="conv4", method=method, device="cpu", cache_dir=cache)
            for _ in session.set_support(support):
                pass
            for _ in session.label(folder):
                pass
            if start:
                print(
                    f"labeled {len(session.predictions().paths)} images "
                    f"({session.embedded_count} embedded) in {time.perf_counter() - start:.1f} s;"
                    f" embedding size {session.embed_dim}"
                )
                start = 0.0

            def correct(r: int, session: LabelingSession = session) -> Any:
                return session.add_example(paths[100 + r], f"class{r % 5}", reviewed=True)

            ms = timed(correct, args.repeats, args.images)
            print(
                f"{method:>9}: correction → {args.images} updated predictions in "
                f"{ms:7.1f} ms (median of {args.repeats}; refined: {session._refines()})"
            )
            session.close()


def stored(args: argparse.Namespace) -> None:
    from fewshot_gui.cluster.shards import RunInfo
    from fewshot_gui.cluster.stored import StoredSession

    n, dim, rng = args.images, args.stored_dim, np.random.default_rng(0)
    classes = [f"class {k}" for k in range(args.classes)]
    centres = rng.normal(size=(len(classes), dim))
    truth = rng.integers(0, len(classes), n)
    vectors = (centres[truth] + 1.5 * rng.normal(size=(n, dim))).astype(np.float32)
    vectors[: n // 10] = rng.normal(size=(n // 10, dim))  # images of no class
    paths = [f"/photos/{i:07d}.jpg" for i in range(n)]
    shots = [(f"/examples/{c}/{i}.jpg", c) for c in classes for i in range(3)]
    ids = np.repeat(np.arange(len(classes)), 3)
    examples = (centres[ids] + 1.5 * rng.normal(size=(len(ids), dim))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            info = RunInfo(classes, "stored", "synthetic", method, method, dim, True, "x")
            result = SimpleNamespace(
                info=info,
                root=Path(tmp),
                paths=np.asarray(paths),
                support=lambda: (shots, examples),
                embeddings=lambda: vectors,
                failed_mask=lambda: np.zeros(n, bool),
            )
            for refined in (True, False):
                session = StoredSession(result)  # type: ignore[arg-type]
                session.transductive = refined

                def correct(r: int, session: StoredSession = session) -> Any:
                    return session.add_example(
                        paths[1000 + r], classes[r % len(classes)], reviewed=True
                    )

                ms = timed(correct, args.repeats, n)
                print(
                    f"{method:>9}: correction → {n} updated predictions ({dim}-d, "
                    f"{len(classes)} classes, refined: {session._refines()}) in {ms:7.1f} ms "
                    f"(median of {args.repeats})"
                )


if __name__ == "__main__":
    main()
