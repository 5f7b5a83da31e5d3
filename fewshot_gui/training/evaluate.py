"""N-way K-shot evaluation: mean accuracy, 95% interval and expected calibration error.

Each image of the evaluated classes is embedded once; episodes are then sampled over the cached
embeddings and adapted by the registry adapter (``create_adapter(method, state=…)`` with the
checkpoint's meta-learned adapter state). Queries are classified on their own: on the first
episode the batch prediction is checked against one-query-at-a-time predictions, and if they
differ (a transductive adapter) every later query is predicted alone.

Checkpoints of a method whose learner adapts the whole network (``maml``/``fomaml``, metadata
``adapt == "full"``) are evaluated the same way by default: the method's full-network learner runs
its inner loop over the encoder on the episode's images, with the checkpoint's ``inner_steps`` /
``inner_lr`` (``adapt="head"`` evaluates on embeddings through the adapter instead).

Which classes (``split="auto"``, :func:`choose_classes`): the checkpoint's validation classes when
the data set holds them all (its own data set); else the data set's classes the checkpoint was not
trained on, which for a data set it never saw is all of them. The result says which were used.

``transductive``: the metric family's prototypes are refined on the episode's queries
(:mod:`fewshot_gui.adapters.transductive`, as labeling does); ``imbalance`` / ``distractors`` draw
episodes like real folders (:mod:`fewshot_gui.training.open_episodes`; the same episodes with and
without refinement), accuracy counting the queries of the episode's classes only.

Progress: :func:`evaluate` yields :class:`Progress` while it embeds (stage ``"embedding"``, images;
cached images count as done) and per episode (stage ``"episodes"``), each with its own rate and
ETA.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fewshot_gui.core.device import inference, plan_device
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import Progress
from fewshot_gui.data.episodes import ClassFolderDataset, EpisodeSampler, ImageStore
from fewshot_gui.encoders.domain_gate import DomainGate
from fewshot_gui.training.episode_model import EpisodeModel, build_learner
from fewshot_gui.training.episodic_run import mean_ci95
from fewshot_gui.training.open_episodes import limit_images, open_episode

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
    transductive: bool = False  # refine the prototypes on the episode's queries (metric family)
    imbalance: float = 1.0  # query counts per class differ by up to this ratio
    distractors: int = 0  # query images of classes outside the episode (label -1)
    max_per_class: int | None = None  # use only the first N images of each class


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


Steps = Generator[Progress, None, np.ndarray]
"""A job that yields :class:`Progress` and returns its ``(N, D)`` embeddings."""


def _rate_progress(done: int, total: int, stage: str, fresh: int, since: float) -> Progress:
    """Progress with the rate of the ``fresh`` items done since ``since`` (perf_counter)."""
    rate = fresh / max(time.perf_counter() - since, 1e-9)
    return Progress(done, total, stage, rate, (total - done) / rate if rate > 0 else None)


def choose_classes(
    config: EvalConfig, metadata: dict[str, Any], dataset: ClassFolderDataset
) -> tuple[ClassFolderDataset, str]:
    """The view of ``dataset`` to evaluate on and a phrase saying which classes it holds.

    ``--classes-from`` and an explicit ``--split`` are followed as given. ``auto``: the
    checkpoint's validation classes when ``dataset`` holds them all; else every class of
    ``dataset`` that is not one of the checkpoint's training classes (all of them for a data set
    it never saw, or for an encoder that records none). A checkpoint that held no class out (no
    validation classes) is evaluated on all classes, and the phrase says how many trained it.
    """
    if config.classes_from or config.split != "auto":
        classes, source = _split_classes(config, metadata)
        if classes is None:
            return dataset, f"all {len(dataset.base_classes)} classes"
        return dataset.subset(classes, (0,)), f"{len(classes)} {source}"
    present = set(dataset.base_classes)
    held_out = list(metadata.get("val_classes") or [])
    if held_out and present.issuperset(held_out):
        view = dataset.subset(held_out, (0,))
        return view, f"the {len(held_out)} validation classes of the encoder's checkpoint"
    trained = present.intersection(metadata.get("train_classes") or [])
    if not trained:
        known = " (none of them the checkpoint's)" if held_out else ""
        return dataset, f"all {len(present)} classes{known}"
    if not held_out:  # trained on every class it had: nothing held out to prefer
        return (
            dataset,
            f"all {len(present)} classes ({len(trained)} of them trained the checkpoint)",
        )
    unseen = [c for c in dataset.base_classes if c not in trained]
    if len(unseen) < config.way:
        raise UsageError(
            f"{len(trained)} of the {len(present)} classes in {dataset.root} trained the "
            f"encoder's checkpoint, which leaves {len(unseen)} for a {config.way}-way evaluation; "
            "use --split all to evaluate on every class anyway"
        )
    return dataset.subset(unseen, (0,)), (
        f"the {len(unseen)} classes the checkpoint was not trained on "
        f"({len(trained)} training classes left out)"
    )


def _embed_steps(
    store: ImageStore,
    image_ids: np.ndarray,
    model: torch.nn.Module,
    plan: Any,
    stage: str = "embedding",
    already: int = 0,
) -> Steps:
    """``(N,)`` image ids → ``(N, D)`` float32 embeddings, each image embedded once; yields
    progress after each batch (``already`` images, e.g. cached ones, count as done)."""
    out = []
    batch = max(1, plan.batch_size)
    total = already + len(image_ids)
    started = time.perf_counter()
    for start in range(0, len(image_ids), batch):
        images = store.images(image_ids[start : start + batch])
        with inference(plan):
            x = store.preprocessing.normalize(plan.to_device(images))
            out.append(model(x).float().cpu().numpy())
        done = start + len(out[-1])
        yield _rate_progress(already + done, total, stage, done, started)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _embed_cached_steps(
    config, loaded, dataset, store, image_ids, plan, stage="embedding"
) -> Steps:
    """:func:`_embed_steps` through the on-disk embedding cache (repeated evaluations are fast)."""
    if not config.use_cache:
        return (yield from _embed_steps(store, image_ids, loaded.model, plan, stage))
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
        yield Progress(len(hit), len(records), stage)
        if len(missing):
            ids = np.asarray(image_ids)[missing]
            fresh = yield from _embed_steps(store, ids, loaded.model, plan, stage, len(hit))
            cache.put_many([records[i] for i in missing], fresh)
            out[missing] = fresh
        return out
    finally:
        cache.close()


def _embed_cached(config, loaded, dataset, store, image_ids, plan) -> np.ndarray:
    """:func:`_embed_cached_steps` run to its end, quietly."""
    steps = _embed_cached_steps(config, loaded, dataset, store, image_ids, plan)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def evaluate(config: EvalConfig) -> Iterator[Progress | dict[str, Any]]:
    """Yields :class:`Progress` per episode, then one result dict (see the module docstring)."""
    from fewshot_gui.adapters.registry import adapter_class, create_adapter
    from fewshot_gui.encoders.registry import load_encoder

    if config.threads:
        torch.set_num_threads(config.threads)
    if config.episodes < 1 or config.way < 2 or config.shot < 1 or config.query < 1:
        raise UsageError("evaluation needs --episodes ≥ 1, --way ≥ 2, --shot ≥ 1, --query ≥ 1")
    method = adapter_class(config.method)  # an unknown name: UsageError listing the methods
    plan = plan_device(config.device)
    loaded = load_encoder(config.encoder, plan, method=config.method)
    metadata = loaded.metadata or {}
    depth = metadata.get("classes_at_depth", "auto")
    if os.path.realpath(str(metadata.get("dataset", ""))) != os.path.realpath(config.data_dir):
        depth = "auto"
    dataset, source = choose_classes(config, metadata, ClassFolderDataset(config.data_dir, depth))
    if config.max_per_class:
        dataset = limit_images(dataset, config.max_per_class)
    if dataset.num_classes < config.way:
        raise UsageError(
            f"{config.way}-way episodes need {config.way} classes; {source} of "
            f"{config.data_dir} give {dataset.num_classes}"
        )
    sampler = EpisodeSampler(dataset, config.way, config.shot, config.query, config.seed)
    folder_like = config.imbalance > 1 or config.distractors > 0
    store = ImageStore(
        dataset,
        loaded.spec.preprocessing,
        preload=False,
        cache_mb=256,
        num_workers=plan.num_workers,
    )
    adapt = config.adapt or metadata.get("adapt") or "head"
    full_network = method.full_network and adapt == "full"
    adapter_options = {**(metadata.get("adapter_options") or {}), **config.options}

    started = time.perf_counter()
    image_ids = dataset.used_images
    row = np.full(len(dataset.paths), -1, dtype=np.int64)
    row[image_ids] = np.arange(len(image_ids))
    embeddings = None
    if not full_network:
        steps = _embed_cached_steps(config, loaded, dataset, store, image_ids, plan)
        embeddings = yield from steps
    gate = DomainGate.from_dict(metadata.get("domain_gate")) if config.route else None
    base_embeddings = None
    if gate is not None and embeddings is not None:
        base = load_encoder(gate.base, plan)
        base_store = ImageStore(
            dataset, base.spec.preprocessing, preload=False, num_workers=plan.num_workers
        )
        steps = _embed_cached_steps(
            config, base, dataset, base_store, image_ids, plan, "embedding (base features)"
        )
        base_embeddings = yield from steps
    routed = 0
    model = None
    if full_network:
        dim = int(loaded.spec.embed_dim)
        settings = {
            "steps": int(metadata.get("inner_steps") or 5),
            "lr": float(metadata.get("inner_lr") or 0.1),
            "adapt": "full",
        }
        model = EpisodeModel(loaded.model, build_learner(config.method, dim, settings), dim)
        model.to(plan.device).eval()
    accuracies, confidences, correct = [], [], []
    per_query = False
    checked = False
    episodes_started = time.perf_counter()
    for index in range(config.episodes):
        episode = sampler.episode(index)
        if folder_like:
            episode = open_episode(
                dataset,
                index,
                config.way,
                config.shot,
                config.query,
                config.imbalance,
                config.distractors,
                config.seed,
            )
        names = [dataset.classes[c] for c in episode.classes]
        if model is not None:
            probs = _model_probs(model, store, dataset, episode, plan)
        else:
            assert embeddings is not None
            features, state = embeddings, loaded.adapter_state
            encoder_name = str(config.encoder)
            support_rows = row[dataset.item_image[episode.support]]
            if (
                base_embeddings is not None
                and gate is not None
                and not gate.in_domain(base_embeddings[support_rows])
            ):
                features, state, routed = base_embeddings, None, routed + 1
                encoder_name = gate.base
            support = features[row[dataset.item_image[episode.support]]]
            query = features[row[dataset.item_image[episode.query]]]
            adapter = create_adapter(config.method, state=state, **adapter_options)
            adapter.fit(support, [names[y] for y in episode.support_y])
            order = [adapter.classes.index(n) for n in names]
            if config.transductive and _refinable(adapter):
                probs = _refined_probs(adapter, support, query, encoder_name)
                checked = True  # by design not one query at a time
            elif per_query:
                probs = np.concatenate([adapter.predict_proba(q[None]) for q in query])
            else:
                probs = adapter.predict_proba(query)
            if not checked:
                alone = np.concatenate([adapter.predict_proba(q[None]) for q in query])
                per_query = not np.allclose(alone, probs, atol=1e-4)
                probs, checked = alone, True
            probs = probs[:, order]
        known = episode.query_y >= 0  # distractors belong to no class of the episode
        probs = probs[known]
        predicted = probs.argmax(1)
        hits = predicted == episode.query_y[known]
        accuracies.append(float(hits.mean()))
        confidences.append(probs.max(1))
        correct.append(hits)
        yield _rate_progress(index + 1, config.episodes, "episodes", index + 1, episodes_started)
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
        "class_names": dataset.used_base_classes,
        "class_groups": dataset.used_groups,
        "adaptation": (
            "full-network inner loop on images"
            if full_network
            else "registry adapter on embeddings"
        ),
        "queries_predicted_alone": bool(per_query or model is not None),
        "episodes_on_base_features": routed if gate is not None else None,
        "transductive": config.transductive,
        "imbalance": config.imbalance,
        "distractors": config.distractors,
        "seed": config.seed,
        "device": plan.name,
        "wall_s": round(time.perf_counter() - started, 2),
    }


def _refinable(adapter: Any) -> bool:
    """The metric family (or ``auto`` using it): its prototypes can be refined."""
    inner = getattr(adapter, "adapter", None) or adapter
    return getattr(inner, "family", "") == "metric"


def _refined_probs(
    adapter: Any, support: np.ndarray, query: np.ndarray, encoder: str
) -> np.ndarray:
    """Query probabilities ``(Q, C)`` in ``adapter.classes`` order, prototypes refined on the
    queries with their unknown scores, as the labeling session does."""
    from fewshot_gui.adapters.transductive import SupportState, predict

    state = SupportState.fit(support, adapter.support_labels, adapter.classes, encoder)
    probs, _ = predict(query, None, state.refined(len(query), lambda: query), None)
    return probs


def _model_probs(model, store, dataset, episode, plan) -> np.ndarray:
    """Query probabilities ``(Q, way)`` from the full-network episode model on the images."""
    support_y = torch.from_numpy(episode.support_y).to(plan.device)
    norm = store.preprocessing.normalize
    with torch.no_grad():
        support_x = norm(plan.to_device(store.items(episode.support, dataset)))
        query_x = norm(plan.to_device(store.items(episode.query, dataset)))
        logits = model(support_x, support_y, query_x, len(episode.classes))
    return torch.softmax(logits.detach().float(), 1).cpu().numpy()


def run_evaluation(config: EvalConfig) -> dict[str, Any]:
    """Drive :func:`evaluate` to its result dict."""
    result: dict[str, Any] = {}
    for item in evaluate(config):
        if isinstance(item, dict):
            result = item
    return result
