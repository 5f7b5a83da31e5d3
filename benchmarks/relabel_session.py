"""Correction → updated predictions through the real LabelingSession, per method.

Labels N small synthetic images once (Conv-4, random weights, embeddings cached on disk), then for
each method: a new session over the same cache, one correction (``add_example``) and the time until
every image has its new prediction (what the app waits for). Prints one line per method.

    python benchmarks/relabel_session.py --images 10000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fewshot_gui.adapters.registry import adapter_names
from fewshot_gui.bench.synthetic import make_tiny_images
from fewshot_gui.session import LabelingSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--methods", default=",".join(adapter_names()))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
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
            timings = []
            for r in range(args.repeats):
                t0 = time.perf_counter()
                predictions = session.add_example(paths[100 + r], f"class{r % 5}")
                timings.append((time.perf_counter() - t0) * 1000)
                assert len(predictions.paths) == args.images
            print(
                f"{method:>9}: correction → {args.images} updated predictions in "
                f"{statistics.median(timings):7.1f} ms (median of {args.repeats})"
            )
            session.close()


if __name__ == "__main__":
    main()
