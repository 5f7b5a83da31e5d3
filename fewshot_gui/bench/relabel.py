"""Re-label latency: milliseconds to add one example and re-predict ``n`` cached embeddings, per
method, as the app does after a correction."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np


def bench_relabel(
    methods: list[str],
    sizes: list[int],
    dim: int,
    states: Mapping[str, Mapping[str, Any] | None] | None = None,
    repeats: int = 5,
) -> dict:
    """Median ms to add one example and re-predict ``n`` cached embeddings, per method and size.

    As in the app: the embeddings are in an :class:`EmbeddingTable` that was labeled before (so
    the support-independent query features are cached), the adapter has the encoder's
    meta-learned state ``states[method]`` when there is one, and each correction is
    ``add_example`` then ``predict_proba`` over every image.
    """
    from fewshot_gui.adapters.registry import create_adapter
    from fewshot_gui.core.embedding_table import EmbeddingTable

    rng = np.random.default_rng(0)
    classes, shots = 5, 5
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    support = np.repeat(centres, shots, axis=0) + 0.5 * rng.normal(size=(classes * shots, dim))
    labels = [f"class{i}" for i in range(classes) for _ in range(shots)]
    results: dict[str, dict[str, float]] = {}
    for n in sizes:
        table = EmbeddingTable(dim)
        paths = [f"image{i}" for i in range(n)]
        for start in range(0, n, 4096):  # as labeling adds them, batch by batch
            part = rng.integers(0, classes, min(4096, n - start))
            noise = 0.5 * rng.normal(size=(len(part), dim))
            table.add(paths[start : start + len(part)], centres[part] + noise)
        rows = table.rows(paths)
        for method in methods:
            state = (states or {}).get(method)
            adapter = create_adapter(method, state=state).fit(support.astype(np.float32), labels)
            features = table.features(rows, adapter.feature_kind(), adapter.query_features)
            adapter.predict_proba(table.vectors(rows), features)  # labeled once before
            timings = []
            for r in range(repeats):
                example = table.vectors(rows)[r]
                start = time.perf_counter()
                adapter.add_example(example, labels[r % len(labels)])
                features = table.features(rows, adapter.feature_kind(), adapter.query_features)
                adapter.predict_proba(table.vectors(rows), features)
                timings.append((time.perf_counter() - start) * 1000)
            results.setdefault(method, {})[size_key(n)] = float(np.median(timings))
    return results


def adapter_states(encoder: str, methods: list[str]) -> dict[str, Any]:
    """Each method's meta-learned adapter state from ``encoder``'s checkpoint (None without one);
    a family name such as ``omniglot`` resolves to the checkpoint made for each method."""
    from fewshot_gui.encoders.checkpoint import load_checkpoint
    from fewshot_gui.encoders.registry import adapter_state_for, resolve_encoder

    states: dict[str, Any] = {}
    for method in methods:
        path = resolve_encoder(encoder, method).checkpoint_path
        entry = load_checkpoint(path)["adapter"] if path is not None else None
        states[method] = adapter_state_for(entry, method)[0] if entry else None
    return states


def size_key(n: int) -> str:
    """``10000`` → ``"10k"``, ``100`` → ``"100"`` (JSON key suffixes)."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
