"""Fit and store a checkpoint's :class:`~fewshot_gui.encoders.domain_gate.DomainGate`.

The bank is the base-encoder centroid of each *training* class of the checkpoint (the first
``per_class`` images of each, as the training split took them); the threshold is a low quantile of
the domain scores of random ``shot``-example tasks drawn from its *validation* classes, so that
about ``1 - quantile`` of tasks from the tuning domain still use the tuned features. Only the
checkpoint's own data is read.

    python -m fewshot_gui.training.domain_gate resources/checkpoints/photos.pt ../shared/datasets/flowers102
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
import torch

from fewshot_gui.core.device import plan_device
from fewshot_gui.data.episodes import ClassFolderDataset, ImageStore
from fewshot_gui.encoders.checkpoint import load_checkpoint, save_with_adapter
from fewshot_gui.encoders.domain_gate import DomainGate, unit_rows
from fewshot_gui.encoders.registry import load_encoder
from fewshot_gui.training.evaluate import EvalConfig, _embed_cached

DEFAULT_BASE = "efficientnet-lite0"


def embed_images(
    encoder: str, dataset: ClassFolderDataset, image_ids: np.ndarray, cache_dir: str | None = None
) -> np.ndarray:
    """``(N,)`` image ids of ``dataset`` → ``(N, D)`` embeddings by ``encoder`` (cached on disk)."""
    plan = plan_device("cpu")
    loaded = load_encoder(encoder, plan)
    store = ImageStore(dataset, loaded.spec.preprocessing, preload=False, num_workers=2)
    config = EvalConfig(data_dir=dataset.root, encoder=encoder, cache_dir=cache_dir)
    return _embed_cached(config, loaded, dataset, store, image_ids, plan)


def task_scores(
    gate: DomainGate,
    embeddings: np.ndarray,
    labels: np.ndarray,
    way: int,
    shot: int,
    tasks: int,
    seed: int,
) -> np.ndarray:
    """Domain scores of ``tasks`` random ``way``-way ``shot``-shot support sets."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    scores = np.empty(tasks, np.float32)
    per_image = gate.image_scores(embeddings)
    for t in range(tasks):
        chosen = rng.choice(classes, size=min(way, len(classes)), replace=False)
        picks = [rng.choice(np.flatnonzero(labels == c), size=shot, replace=False) for c in chosen]
        scores[t] = per_image[np.concatenate(picks)].mean()
    return scores


def fit_domain_gate(
    checkpoint: str,
    data_dir: str,
    base: str = DEFAULT_BASE,
    per_class: int = 16,
    val_per_class: int = 24,
    quantile: float = 0.02,
    way: int = 5,
    shot: int = 1,
    tasks: int = 2000,
    cache_dir: str | None = None,
) -> tuple[DomainGate, dict[str, float]]:
    """The gate of ``checkpoint`` (training classes → bank, validation classes → threshold)."""
    metadata = load_checkpoint(checkpoint)["metadata"]
    train = _names(metadata.get("train_classes"))
    val = _names(metadata.get("val_classes"))
    if not train or not val:
        raise ValueError(f"{checkpoint} records no training and validation classes")
    full = ClassFolderDataset(data_dir, 1)
    train_set = full.subset(train)
    ids = np.concatenate(
        [np.sort(train_set.base_images[b])[:per_class] for b in train_set.base_ids]
    )
    owner = np.concatenate(
        [
            np.full(min(per_class, len(train_set.base_images[b])), i)
            for i, b in enumerate(train_set.base_ids)
        ]
    )
    train_emb = unit_rows(embed_images(base, train_set, ids, cache_dir))
    bank = unit_rows(np.stack([train_emb[owner == c].mean(0) for c in range(len(train))]))
    val_set = full.subset(val)
    val_ids = np.concatenate(
        [np.sort(val_set.base_images[b])[:val_per_class] for b in val_set.base_ids]
    )
    val_labels = np.searchsorted(
        np.concatenate([[val_set.base_images[b][0]] for b in val_set.base_ids]),
        val_ids,
        side="right",
    )
    val_emb = embed_images(base, val_set, val_ids, cache_dir)
    provisional = DomainGate(base, bank, 0.0)
    scores = task_scores(provisional, val_emb, val_labels, way, shot, tasks, seed=0)
    threshold = float(np.quantile(scores, quantile))
    fitted_on = (
        f"bank: {len(train)} training classes × {per_class} images; threshold: "
        f"the {100 * quantile:g} % quantile of the scores of {tasks} {way}-way {shot}-shot tasks of "
        f"{len(val)} validation classes × {val_per_class} images ({base} features)"
    )
    stats = {
        "threshold": threshold,
        "val_task_score_median": float(np.median(scores)),
        "val_tasks_kept": float((scores >= threshold).mean()),
    }
    return DomainGate(base, bank, threshold, fitted_on), stats


def store_gate(checkpoint: str, gate: DomainGate) -> None:
    """Re-save ``checkpoint`` with ``gate`` in its metadata (stored precision kept)."""
    ckpt = load_checkpoint(checkpoint)
    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    half = any(v.dtype == torch.float16 for v in raw["encoder_state"].values())
    metadata = dict(ckpt["metadata"], domain_gate=gate.to_dict())
    save_with_adapter(
        checkpoint, ckpt, ckpt["adapter"]["method"], ckpt["adapter"]["state"], metadata, half
    )


def _names(value: object) -> list[str]:
    if isinstance(value, str):  # older metadata stores lists as their repr
        import ast

        value = ast.literal_eval(value)
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data_dir", help="the class folders the checkpoint was trained from")
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--quantile", type=float, default=0.02)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--dry-run", action="store_true", help="print, do not store")
    args = parser.parse_args(argv)
    gate, stats = fit_domain_gate(
        args.checkpoint, args.data_dir, args.base, quantile=args.quantile, cache_dir=args.cache_dir
    )
    print(gate.fitted_on)
    print(", ".join(f"{k} {v:.3f}" for k, v in stats.items() if not math.isnan(v)))
    if not args.dry_run:
        store_gate(args.checkpoint, gate)
        print(f"stored in {args.checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
