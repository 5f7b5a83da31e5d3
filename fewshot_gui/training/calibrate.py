"""Calibrate the metric adapter's default temperature for a checkpoint on its validation classes.

With one example per class the metric adapter cannot fit a temperature by leave-one-out, so it
uses the checkpoint's ``log_scale``. This fits that scale on episodes of the classes held out during
meta-training (never the evaluation classes): the cosine-prototype scale with the lowest query
negative log-likelihood on a log-spaced grid. The result is written into the checkpoint's adapter
state (``log_scale``, or ``metric.log_scale`` in a merged checkpoint).

    python -m fewshot_gui.training.calibrate CKPT DATA_DIR [--way 5] [--shot 1] [--episodes 300]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
import torch

from fewshot_gui.core.device import plan_device
from fewshot_gui.data.episodes import ClassFolderDataset, EpisodeSampler, ImageStore
from fewshot_gui.encoders.checkpoint import load_checkpoint, save_with_adapter
from fewshot_gui.encoders.registry import load_encoder
from fewshot_gui.training.evaluate import EvalConfig, _embed_cached, _split_classes

GRID = 2.0 ** (np.arange(0, 41) / 4)  # scale 1 … 1024


def fit_cosine_scale(
    support: list[np.ndarray],
    labels: list[np.ndarray],
    queries: list[np.ndarray],
    query_labels: list[np.ndarray],
) -> float:
    """The grid scale minimising mean query NLL of softmax(scale · cos(query, prototype))."""
    sims, targets = [], []
    for s, y, q, qy in zip(support, labels, queries, query_labels, strict=True):
        s = s / np.linalg.norm(s, axis=1, keepdims=True).clip(1e-12)
        protos = np.stack([s[y == c].mean(0) for c in range(int(y.max()) + 1)])
        protos /= np.linalg.norm(protos, axis=1, keepdims=True).clip(1e-12)
        q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
        sims.append(q @ protos.T)
        targets.append(qy)
    best, best_nll = float(GRID[0]), math.inf
    for scale in GRID:
        nll = 0.0
        for sim, qy in zip(sims, targets, strict=True):
            logits = scale * sim
            logits -= logits.max(1, keepdims=True)
            log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
            nll += float(-log_probs[np.arange(len(qy)), qy].mean())
        if nll < best_nll:
            best, best_nll = float(scale), nll
    return best


def calibrate(
    path: str,
    data_dir: str,
    way: int = 5,
    shot: int = 1,
    query: int = 10,
    episodes: int = 300,
    seed: int = 0,
) -> float:
    """Fit and store the cosine scale of ``path``'s metric adapter; returns the scale."""
    plan = plan_device("cpu")
    loaded = load_encoder(path, plan, method="metric")
    config = EvalConfig(data_dir=data_dir, encoder=path, split="val", way=way, shot=shot)
    classes, _ = _split_classes(config, loaded.metadata)
    dataset = ClassFolderDataset(data_dir).subset(classes, (0,))
    store = ImageStore(dataset, loaded.spec.preprocessing, preload=False, num_workers=2)
    ids = dataset.used_images
    embeddings = _embed_cached(config, loaded, dataset, store, ids, plan)
    row = np.full(len(dataset.paths), -1, dtype=np.int64)
    row[ids] = np.arange(len(ids))
    sampler = EpisodeSampler(dataset, way, shot, query, seed + 104729)
    parts: tuple[list, list, list, list] = ([], [], [], [])
    for i in range(episodes):
        episode = sampler.episode(i)
        parts[0].append(embeddings[row[dataset.item_image[episode.support]]])
        parts[1].append(np.asarray(episode.support_y))
        parts[2].append(embeddings[row[dataset.item_image[episode.query]]])
        parts[3].append(np.asarray(episode.query_y))
    scale = fit_cosine_scale(*parts)
    ckpt = load_checkpoint(path)
    state = dict(ckpt["adapter"]["state"])
    multi = ckpt["adapter"]["method"] == "multi"
    state["metric.log_scale" if multi else "log_scale"] = torch.tensor(math.log(scale))
    metadata = dict(
        ckpt["metadata"],
        metric_scale={
            "scale": scale,
            "fitted_on": f"{way}-way {shot}-shot, {episodes} episodes of val classes",
        },
    )
    raw = torch.load(path, map_location="cpu", weights_only=True)  # keep the stored precision
    half = any(v.dtype == torch.float16 for v in raw["encoder_state"].values())
    save_with_adapter(path, ckpt, ckpt["adapter"]["method"], state, metadata, half)
    return scale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fewshot_gui.training.calibrate")
    parser.add_argument("checkpoint")
    parser.add_argument("data_dir")
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=300)
    args = parser.parse_args(argv)
    scale = calibrate(args.checkpoint, args.data_dir, args.way, args.shot, episodes=args.episodes)
    print(f"{args.checkpoint}: metric cosine scale {scale:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
