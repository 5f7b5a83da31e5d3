"""What the embedding cache costs a cached re-run: reading N embeddings, and a whole cached session.

1. ``EmbeddingCache.get_many`` for N records after ``put_many`` (a new cache object, as a new run
   opens it): the lookup, the read and (format 2) the checksum of every row.
2. A cached re-run of a labeling session over N tiny images (Conv-4 on the CPU): a new session,
   ``set_support`` + ``label`` with every embedding in the cache (scan, lookup, read, predict).

Median of ``--repeats``. To compare two versions side by side on one machine, run the script with
each version first on ``PYTHONPATH`` (e.g. ``git archive REV | tar -x -C /tmp/old``), alternating;
``--against OLD/fewshot_gui/core/cache.py`` times both caches' get_many alternately in one process.

    python benchmarks/cache_rerun.py --images 10000 --dim 1280
    python benchmarks/cache_rerun.py --images 10000 --against /tmp/old/fewshot_gui/core/cache.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import fewshot_gui
from fewshot_gui.core.cache import EmbeddingCache
from fewshot_gui.core.types import ImageRecord


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _reader(cache_class, root: Path, n: int, dim: int):
    """Fill a cache of ``cache_class`` with ``n`` rows; returns a function that reads them all."""
    records = [
        ImageRecord(f"/home/user/photos/album/IMG_{i:06d}.jpg", 200_000 + i, 10**18 + i)
        for i in range(n)
    ]
    data = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    writer = cache_class(root, "bench", dim)
    for start in range(0, n, 256):
        writer.put_many(records[start : start + 256], data[start : start + 256])
    writer.close()

    def read() -> None:
        cache = cache_class(root, "bench", dim)  # as a new run opens it
        hit, _, missing = cache.get_many(records)
        assert len(hit) == n and len(missing) == 0
        cache.close()

    return read


def compare(against: Path, root: Path, n: int, dim: int, repeats: int) -> None:
    """This version's get_many and another's (its cache.py), timed alternately in one process, so
    that both see the same load."""
    spec = importlib.util.spec_from_file_location("other_cache", against)
    assert spec is not None and spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    readers = {
        "this": _reader(EmbeddingCache, root / "this", n, dim),
        str(against): _reader(other.EmbeddingCache, root / "other", n, dim),
    }
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(repeats):
        for name, read in readers.items():
            times[name].append(_median_ms(read, 1))
    for name, values in times.items():
        print(
            f"get_many of {n} rows of {dim} ({name}): median {statistics.median(values):.0f} ms, "
            f"best {min(values):.0f} ms over {repeats} alternating runs"
        )


def session_rerun(root: Path, n: int, repeats: int) -> float:
    from fewshot_gui.bench.synthetic import make_tiny_images
    from fewshot_gui.session import LabelingSession

    folder, cache = root / "images", root / "cache"
    make_tiny_images(folder, n)
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    support = {f"class{k}": paths[k * 7 : k * 7 + 3] for k in range(5)}

    def run() -> LabelingSession:
        session = LabelingSession(encoder="conv4", method="metric", device="cpu", cache_dir=cache)
        for _ in session.set_support(support):
            pass
        for _ in session.label(folder):
            pass
        return session

    run().close()  # cold: fills the cache (each timed run builds Conv-4 again: ~the same cost)

    def cached() -> None:
        session = run()
        assert session.embedded_count == 0, session.embedded_count
        session.close()

    return _median_ms(cached, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1280, help="embedding size for part 1")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-session", action="store_true")
    parser.add_argument(
        "--against", type=Path, help="another version's core/cache.py: compare get_many only"
    )
    args = parser.parse_args()
    where = Path(fewshot_gui.__file__).parent
    with tempfile.TemporaryDirectory(prefix="cache-rerun-") as tmp:
        if args.against:
            compare(args.against, Path(tmp), args.images, args.dim, args.repeats)
            return
        ms = _median_ms(_reader(EmbeddingCache, Path(tmp), args.images, args.dim), args.repeats)
        print(f"[{where}] get_many of {args.images} rows of {args.dim}: {ms:.0f} ms", flush=True)
        if not args.skip_session:
            ms = session_rerun(Path(tmp) / "session", args.images, args.repeats)
            print(f"[{where}] cached session re-run over {args.images} images: {ms:.0f} ms")


if __name__ == "__main__":
    main()
