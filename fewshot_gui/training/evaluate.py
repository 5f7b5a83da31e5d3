"""N-way K-shot evaluation: mean accuracy, 95% interval and expected calibration error.

Each image of the evaluated classes is embedded once; episodes are then sampled over the cached
embeddings and adapted by the registry adapter (``create_adapter(method, state=…)`` with the
checkpoint's meta-learned adapter state). Queries are classified on their own: on the first
episode the batch prediction is checked against one-query-at-a-time predictions, and if they
differ (a transductive adapter) every later query is predicted alone.

``maml``/``fomaml`` checkpoints trained with a full-network inner loop (metadata ``adapt ==
"full"``) are evaluated the same way by default: the inner loop runs over the whole encoder on
the episode's images (``adapt="head"`` evaluates on embeddings through the adapter instead).
For a checkpoint trained on a split, ``split="auto"`` evaluates on its held-out classes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fewshot_gui.core.device import inference, plan_device
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import Progress
from fewshot_gui.data.episodes import ClassFolderDataset, EpisodeSampler, ImageStore
from fewshot_gui.encoders.domain_gate import DomainGate
from fewshot_gui.training.meta_train import mean_ci95
from fewshot_gui.training.methods import EpisodeModel

ECE_BINS = 15


@dataclass
class EvalConfig:
    data_dir: str
    encoder: str
    method: str = "metric"
    way: int = 5
    shot: int = 1
    query: int = 15
    episodes: int = 600
    seed: int = 0
    split: str = "auto"  # auto | all | val | train
    classes_from: str | None = None  # "CKPT:val" or "CKPT:train"
    adapt: str | None = None  # maml/fomaml: full | head (default: as trained)
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    threads: int | None = None
    use_cache: bool = True  # embeddings through the on-disk cache (repeat evaluations are fast)
    cache_dir: str | None = None
    route: bool = True  # follow the checkpoint's domain gate per episode, as labeling does


def expected_calibration_error(
    confidences: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE over equal-width confidence bins: Σ_b (n_b / N)·|accuracy_b − confidence_b|."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidences.size == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidences[mask].mean())
    return float(ece)


def _split_classes(config: EvalConfig, metadata: dict[str, Any]) -> tuple[list[str] | None, str]:
    """Base class names to evaluate on (None = all) and a description of where they come from."""
    if config.classes_from:
        path, _, side = config.classes_from.rpartition(":")
        if side not in ("val", "train") or not path:
            raise UsageError("--classes-from takes CKPT:val or CKPT:train")
        from fewshot_gui.encoders.checkpoint import load_checkpoint

        meta = load_checkpoint(path)["metadata"]
        classes = meta.get(f"{side}_classes")
        if not classes:
            raise UsageError(f"{path} records no {side} classes")
        return list(classes), f"{side} classes of {path}"
    split = config.split
    recorded = metadata.get("val_classes")
    if split == "auto":
        split = "val" if recorded else "all"
    if split == "all":
        return None, "all classes"
    classes = metadata.get(f"{split}_classes")
    if not classes:
        raise UsageError(f"--split {split}: the encoder's checkpoint records no {split} classes")
    return list(classes), f"{split} classes of the encoder's checkpoint"


def _embed_all(
    store: ImageStore, image_ids: np.ndarray, model: torch.nn.Module, plan: Any
) -> np.ndarray:
    """``(N,)`` image ids → ``(N, D)`` float32 embeddings, each image embedded once."""
    out = []
    batch = max(1, plan.batch_size)
    with inference(plan):
        for start in range(0, len(image_ids), batch):
            images = store.images(image_ids[start : start + batch])
            x = store.preprocessing.normalize(plan.to_device(images))
            out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _embed_cached(config, loaded, dataset, store, image_ids, plan) -> np.ndarray:
    """:func:`_embed_all` through the on-disk embedding cache (repeated evaluations are fast)."""
    if not config.use_cache:
        return _embed_all(store, image_ids, loaded.model, plan)
    from fewshot_gui.core.cache import EmbeddingCache, default_cache_dir
    from fewshot_gui.data.folder import record_for
    from fewshot_gui.encoders.registry import embedding_cache_id

    records = [record_for(dataset.paths[i]) for i in image_ids]
    cache = EmbeddingCache(
        config.cache_dir or default_cache_dir(),
        embedding_cache_id(loaded.spec),
        int(loaded.spec.embed_dim),
    )
    try:
        hit, cached, missing = cache.get_many(records)
        out = np.zeros((len(records), int(loaded.spec.embed_dim)), np.float32)
        out[hit] = cached
        if len(missing):
            fresh = _embed_all(store, np.asarray(image_ids)[missing], loaded.model, plan)
            cache.put_many([records[i] for i in missing], fresh)
            out[missing] = fresh
        return out
    finally:
        cache.close()


def evaluate(config: EvalConfig) -> Iterator[Progress | dict[str, Any]]:
    """Yields :class:`Progress` per episode, then one result dict (see the module docstring)."""
    from fewshot_gui.adapters.registry import adapter_names, create_adapter
    from fewshot_gui.encoders.registry import load_encoder

    if config.threads:
        torch.set_num_threads(config.threads)
    if config.episodes < 1 or config.way < 2 or config.shot < 1 or config.query < 1:
        raise UsageError("evaluation needs --episodes ≥ 1, --way ≥ 2, --shot ≥ 1, --query ≥ 1")
    plan = plan_device(config.device)
    loaded = load_encoder(config.encoder, plan, method=config.method)
    metadata = loaded.metadata or {}
    classes, source = _split_classes(config, metadata)
    depth = metadata.get("classes_at_depth", "auto")
    if os.path.realpath(str(metadata.get("dataset", ""))) != os.path.realpath(config.data_dir):
        depth = "auto"
    dataset = ClassFolderDataset(config.data_dir, depth)
    if classes is not None:
        dataset = dataset.subset(classes, (0,))
    sampler = EpisodeSampler(dataset, config.way, config.shot, config.query, config.seed)
    store = ImageStore(
        dataset,
        loaded.spec.preprocessing,
        preload=False,
        cache_mb=256,
        num_workers=plan.num_workers,
    )
    adapt = config.adapt or metadata.get("adapt") or "head"
    full_network = config.method in ("maml", "fomaml") and adapt == "full"
    adapter_options = {**(metadata.get("adapter_options") or {}), **config.options}

    started = time.perf_counter()
    image_ids = dataset.used_images
    row = np.full(len(dataset.paths), -1, dtype=np.int64)
    row[image_ids] = np.arange(len(image_ids))
    embeddings = None
    if not full_network:
        embeddings = _embed_cached(config, loaded, dataset, store, image_ids, plan)
    builtin = not full_network and config.method not in adapter_names()
    gate = DomainGate.from_dict(metadata.get("domain_gate")) if config.route else None
    base_embeddings = None
    if gate is not None and embeddings is not None and not builtin:
        base = load_encoder(gate.base, plan)
        base_store = ImageStore(
            dataset, base.spec.preprocessing, preload=False, num_workers=plan.num_workers
        )
        base_embeddings = _embed_cached(config, base, dataset, base_store, image_ids, plan)
    routed = 0
    model = None
    if full_network or builtin:
        model = EpisodeModel(
            loaded.model,
            config.method,
            int(loaded.spec.embed_dim),
            inner_steps=int(metadata.get("inner_steps") or 5),
            inner_lr=float(metadata.get("inner_lr") or 0.1),
            adapt=adapt,
        ).to(plan.device)
        if model.learner is not None and loaded.adapter_state:
            model.learner.load_state_dict(
                {k: v for k, v in loaded.adapter_state.items() if k in model.learner.state_dict()}
            )
        model.eval()
    accuracies, confidences, correct = [], [], []
    per_query = False
    checked = False
    for index in range(config.episodes):
        episode = sampler.episode(index)
        names = [dataset.classes[c] for c in episode.classes]
        if model is not None:
            probs = _model_probs(model, store, dataset, episode, embeddings, row, plan)
        else:
            assert embeddings is not None
            features, state = embeddings, loaded.adapter_state
            support_rows = row[dataset.item_image[episode.support]]
            if (
                base_embeddings is not None
                and gate is not None
                and not gate.in_domain(base_embeddings[support_rows])
            ):
                features, state, routed = base_embeddings, None, routed + 1
            support = features[row[dataset.item_image[episode.support]]]
            query = features[row[dataset.item_image[episode.query]]]
            adapter = create_adapter(config.method, state=state, **adapter_options)
            adapter.fit(support, [names[y] for y in episode.support_y])
            order = [adapter.classes.index(n) for n in names]
            if per_query:
                probs = np.concatenate([adapter.predict_proba(q[None]) for q in query])
            else:
                probs = adapter.predict_proba(query)
            if not checked:
                alone = np.concatenate([adapter.predict_proba(q[None]) for q in query])
                per_query = not np.allclose(alone, probs, atol=1e-4)
                probs, checked = alone, True
            probs = probs[:, order]
        predicted = probs.argmax(1)
        hits = predicted == episode.query_y
        accuracies.append(float(hits.mean()))
        confidences.append(probs.max(1))
        correct.append(hits)
        elapsed = time.perf_counter() - started
        rate = (index + 1) / max(elapsed, 1e-9)
        yield Progress(
            index + 1, config.episodes, "episodes", rate, (config.episodes - index - 1) / rate
        )
    accuracy, ci95 = mean_ci95(accuracies)
    yield {
        "accuracy": accuracy,
        "ci95": ci95,
        "ece": expected_calibration_error(np.concatenate(confidences), np.concatenate(correct)),
        "episodes": config.episodes,
        "way": config.way,
        "shot": config.shot,
        "query": config.query,
        "method": config.method,
        "encoder": str(config.encoder),
        "classes": source,
        "num_classes": dataset.num_classes,
        "adaptation": (
            "full-network inner loop on images"
            if full_network
            else "built-in learner on embeddings"
            if builtin
            else "registry adapter on embeddings"
        ),
        "queries_predicted_alone": bool(per_query or model is not None),
        "episodes_on_base_features": routed if gate is not None else None,
        "seed": config.seed,
        "device": plan.name,
        "wall_s": round(time.perf_counter() - started, 2),
    }


def _model_probs(model, store, dataset, episode, embeddings, row, plan) -> np.ndarray:
    """Query probabilities ``(Q, way)`` from the training-time episode model (one query at a
    time for the full-network inner loop: GroupNorm makes embeddings per image anyway)."""
    way = len(episode.classes)
    support_y = torch.from_numpy(episode.support_y).to(plan.device)
    with torch.no_grad():
        if embeddings is not None:
            support = torch.from_numpy(embeddings[row[dataset.item_image[episode.support]]])
            query = torch.from_numpy(embeddings[row[dataset.item_image[episode.query]]])
            logits = model.embedding_logits(
                support.to(plan.device), support_y, query.to(plan.device), way
            )
        else:
            norm = store.preprocessing.normalize
            support_x = norm(plan.to_device(store.items(episode.support, dataset)))
            query_x = norm(plan.to_device(store.items(episode.query, dataset)))
            logits = model(support_x, support_y, query_x, way)
    return torch.softmax(logits.detach().float(), 1).cpu().numpy()


def run_evaluation(config: EvalConfig) -> dict[str, Any]:
    """Drive :func:`evaluate` to its result dict."""
    result: dict[str, Any] = {}
    for item in evaluate(config):
        if isinstance(item, dict):
            result = item
    return result
