"""Episodic meta-training of an encoder for one adaptation family; resumable; a generator.

``meta_train(config)`` yields :class:`Progress` after each meta-iteration and a ``dict`` after each
validation (``{"episode", "val_accuracy", "val_ci95", "best"}``); the last item is a dict with
``"done": True``. The best checkpoint (by validation accuracy on held-out classes/alphabets) is kept
at ``config.out``; ``<out>.state`` holds everything needed to continue (weights, optimizer, step,
RNG state) and is rewritten atomically every ``state_every`` iterations and on interruption.

Episode ``i`` depends only on ``(seed, i)`` and the learning rate only on the step, so a resumed run
replays exactly what the uninterrupted one would have done.

The method is the adapter registry's: its class gives the learner trained here
(:func:`~fewshot_gui.training.episode_model.build_learner`, from ``inner_steps`` / ``inner_lr`` /
``adapt`` and ``options``); what the learner reports (``describe()``, ``calibrate()`` after each
validation: the metric method's temperature, fitted on the validation episodes) is recorded in the
checkpoint's metadata, and its ``adapter_state()`` is the checkpoint's adapter state.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from fewshot_gui.core.atomic import atomic_open
from fewshot_gui.core.device import DevicePlan, plan_device
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import Progress
from fewshot_gui.data.episodes import (
    ClassFolderDataset,
    EpisodeSampler,
    ImageStore,
    split_classes,
)
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.catalog import find_encoder
from fewshot_gui.encoders.checkpoint import (
    build_architecture,
    build_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from fewshot_gui.training.episode_model import EpisodeModel, build_learner

BACKBONES = ("conv4", "resnet12", "efficientnet-lite0")


def pretrained(name: str) -> bool:
    """Whether the registry's encoder ``name`` starts from learned (e.g. ImageNet) weights."""
    spec = find_encoder(name)
    return spec is not None and spec.pretrained


@dataclass
class MetaTrainConfig:
    """Everything a run depends on (recorded in the checkpoint and the resume state)."""

    data_dir: str
    out: str
    method: str = "metric"
    backbone: str = "conv4"
    way: int = 5
    shot: int = 1
    query: int = 5
    episodes: int = 1000
    seed: int = 0
    image_size: int | None = None  # default: 28 for 1-channel data, 84 for conv4/resnet12, 224
    channels: int | None = None  # default: 1 when the images are grayscale, else 3
    rotations: bool = False  # Omniglot's rotations-as-new-classes (training classes only)
    classes_at_depth: str | int = "auto"
    val_fraction: float = 0.2
    val_every: int = 500
    val_episodes: int = 100
    val_way: int | None = None  # default: min(way, 20)
    val_shot: int | None = None  # default: shot
    val_query: int | None = None  # default: query
    lr: float = 1e-3
    lr_halve_every: int = 2000
    clip: float = 10.0
    inner_steps: int = 5
    inner_lr: float | None = None  # default: the method's (maml: 0.4 full network, 0.1 head)
    meta_batch: int = 1
    adapt: str | None = None  # maml/fomaml: "full" (default for conv4/resnet12) or "head"
    options: dict[str, Any] = field(default_factory=dict)  # the learner's own, e.g. distance
    init: str | None = None  # start from this checkpoint's encoder (e.g. metric-trained)
    freeze_until: str | None = None  # freeze parameters before the first one with this prefix
    backbone_lr_scale: float | None = None  # default 0.1 for pretrained backbones, else 1
    device: str = "auto"
    threads: int | None = None
    resume: bool = False
    state_every: int = 50
    preload: bool | None = None  # default: preload when images are at most 64×64
    time_limit: float | None = None  # stop (validate, save) after this many seconds of training
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _atomic_save(obj: object, path: str) -> None:
    """``torch.save`` through the project's one atomic writer (core/atomic.py)."""
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def build_encoder(arch: dict[str, Any]) -> nn.Module:
    """``{"name", "kwargs"}`` → a fresh module from the encoder registry (its learned weights for
    pretrained backbones, else random), with ``embed_dim``."""
    spec = find_encoder(arch["name"])
    if spec is not None and spec.pretrained:
        return spec.build()
    return build_architecture(arch["name"], arch.get("kwargs"))


def _grayscale(dataset: ClassFolderDataset, sample: int = 8) -> bool:
    paths = dataset.paths[:: max(1, len(dataset.paths) // sample)][:sample]
    modes = []
    for path in paths:
        try:
            with Image.open(path) as image:
                modes.append(image.mode)
        except OSError:
            continue
    return bool(modes) and all(m in ("1", "L", "LA", "I", "I;16", "F") for m in modes)


def _setup_encoder(
    config: MetaTrainConfig, dataset: ClassFolderDataset
) -> tuple[nn.Module, dict[str, Any], Preprocessing, dict[str, torch.Tensor], dict[str, Any]]:
    """Encoder, arch, preprocessing, initial adapter state and init-checkpoint metadata."""
    if config.init:
        ckpt = load_checkpoint(config.init)
        arch = ckpt["arch"]
        encoder = build_from_checkpoint(ckpt)
        preprocessing = Preprocessing.from_dict(ckpt["preprocessing"])
        adapter = ckpt.get("adapter") or {}
        return (
            encoder,
            arch,
            preprocessing,
            {},
            {
                "init_from": config.init,
                **{"init_method": adapter.get("method"), "init_metadata": ckpt.get("metadata", {})},
            },
        )
    if config.backbone not in BACKBONES:
        raise UsageError(f"unknown backbone {config.backbone!r}: choose {', '.join(BACKBONES)}")
    spec = find_encoder(config.backbone)
    if spec is not None and spec.pretrained:
        prep = spec.preprocessing
        if config.image_size and config.image_size != prep.crop:
            prep = Preprocessing(
                **{
                    **prep.__dict__,
                    "crop": config.image_size,
                    "resize": round(config.image_size * 256 / 224),
                }
            )
        arch = {"name": config.backbone, "kwargs": {}}
        return build_encoder(arch), arch, prep, {}, {}
    channels = config.channels or (1 if _grayscale(dataset) else 3)
    size = config.image_size or (28 if channels == 1 else 84)
    prep = Preprocessing(
        resize=size,
        crop=size,
        mean=(0.5,) * channels,
        std=(0.5,) * channels,
        interpolation="bilinear",
        channels=channels,
    )
    kwargs: dict[str, Any] = {"in_channels": channels}
    if config.backbone == "conv4":
        kwargs["image_size"] = size
    arch = {"name": config.backbone, "kwargs": kwargs}
    return build_encoder(arch), arch, prep, {}, {}


def _freeze(encoder: nn.Module, prefix: str | None) -> int:
    """Freeze every parameter before the first whose name starts with ``prefix``; count frozen."""
    if not prefix:
        return 0
    if prefix == "all":  # train only the method's learner on a fixed encoder
        for param in encoder.parameters():
            param.requires_grad_(False)
        return sum(1 for _ in encoder.parameters())
    names = [n for n, _ in encoder.named_parameters()]
    if not any(n.startswith(prefix) for n in names):
        raise UsageError(f"--freeze-until {prefix!r} names no parameter of this backbone")
    frozen = 0
    for name, param in encoder.named_parameters():
        if name.startswith(prefix):
            break
        param.requires_grad_(False)
        frozen += 1
    return frozen


def _freeze_batchnorm(module: nn.Module) -> None:
    """BatchNorm keeps its (ImageNet) statistics: non-transductive in training as in use."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def mean_ci95(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-interval ``1.96·std/√n`` (population std)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(1.96 * array.std() / math.sqrt(array.size))


class _Run:
    """The state of one run: data, model, optimizer; one :meth:`step` per meta-iteration."""

    def __init__(self, config: MetaTrainConfig, plan: DevicePlan) -> None:
        self.config, self.plan = config, plan
        full = ClassFolderDataset(config.data_dir, config.classes_at_depth)
        rotations = (0, 90, 180, 270) if config.rotations else (0,)
        if config.val_fraction > 0:
            self.train_set, self.val_set = split_classes(
                full, config.val_fraction, config.seed, by_group=True, train_rotations=rotations
            )
        else:
            self.train_set, self.val_set = full.subset(full.base_classes, rotations), None
        torch.manual_seed(config.seed)
        encoder, self.arch, self.preprocessing, _, self.init_meta = _setup_encoder(config, full)
        self.pretrained = pretrained(self.arch["name"])
        freeze = config.freeze_until
        if freeze is None and self.pretrained:
            freeze = "blocks.5"
        self.frozen = _freeze(encoder, freeze)
        settings = {
            "steps": config.inner_steps,
            "lr": config.inner_lr,
            "adapt": config.adapt,
            "pretrained": self.pretrained,
        }
        dim = int(encoder.embed_dim)
        learner = build_learner(config.method, dim, settings, config.options)
        self.model = EpisodeModel(encoder, learner, dim)
        self.model.to(plan.device)
        self.calibration: dict[str, Any] | None = None  # the learner's, at the last validation
        scale = config.backbone_lr_scale
        scale = scale if scale is not None else (0.1 if self.pretrained else 1.0)
        groups = [
            {"params": [p for p in encoder.parameters() if p.requires_grad], "lr_scale": scale},
            {"params": list(learner.parameters()), "lr_scale": 1.0},
        ]
        self.optimizer = torch.optim.Adam([g for g in groups if g["params"]], lr=config.lr)
        preload = config.preload
        if preload is None:
            preload = self.preprocessing.crop <= 64
        self.store = ImageStore(
            full, self.preprocessing, preload=preload, num_workers=plan.num_workers
        )
        self.sampler = EpisodeSampler(
            self.train_set, config.way, config.shot, config.query, config.seed
        )
        self.val_sampler = self._val_sampler()
        self.step_done = 0
        self.best: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.wall_s = 0.0
        self.updating = False

    def _val_sampler(self) -> EpisodeSampler | None:
        cfg, val = self.config, self.val_set
        if val is None or cfg.val_episodes <= 0:
            return None
        shot, query = cfg.val_shot or cfg.shot, cfg.val_query or max(1, cfg.query)
        eligible = sum(len(items) >= shot + query for items in val.class_items)
        way = min(cfg.val_way or min(cfg.way, 20), eligible)
        if way < 2:
            return None
        return EpisodeSampler(val, way, shot, query, cfg.seed + 7919)

    def _tensors(self, episode, view) -> tuple[torch.Tensor, ...]:
        plan = self.plan
        images = self.store.items(np.concatenate([episode.support, episode.query]), view)
        if plan.pin_memory:
            images = images.pin_memory()
        images = self.preprocessing.normalize(plan.to_device(images))
        if plan.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        n = len(episode.support)
        support_y = torch.from_numpy(episode.support_y).to(plan.device)
        query_y = torch.from_numpy(episode.query_y).to(plan.device)
        return images[:n], support_y, images[n:], query_y

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        """The plan's mixed precision, except for full-network MAML (second-order inner loops
        through bf16 convolutions are not worth the risk): those run in float32."""
        return contextlib.nullcontext() if self.model.full_network else self.plan.autocast()

    def train_mode(self) -> None:
        self.model.train()
        _freeze_batchnorm(self.model)

    def step(self) -> tuple[float, float]:
        """One meta-iteration (``meta_batch`` episodes, one optimizer step) → (loss, accuracy)."""
        cfg = self.config
        lr = cfg.lr * 0.5 ** (self.step_done // max(1, cfg.lr_halve_every))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        self.train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        total_loss = total_acc = 0.0
        for t in range(cfg.meta_batch):
            episode = self.sampler.episode(self.step_done * cfg.meta_batch + t)
            support_x, support_y, query_x, query_y = self._tensors(episode, self.train_set)
            with self._autocast():
                logits = self.model(support_x, support_y, query_x, self.sampler.way)
            loss = F.cross_entropy(logits.float(), query_y) / cfg.meta_batch
            loss.backward()
            total_loss += float(loss.detach())
            total_acc += (
                float((logits.detach().argmax(1) == query_y).float().mean()) / cfg.meta_batch
            )
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        self.updating = True  # an interruption now would leave half-updated weights
        self.optimizer.step()
        self.step_done += 1
        self.updating = False
        return total_loss, total_acc

    def validate(self) -> tuple[float, float]:
        """Accuracy (mean, ci95) over the fixed validation episodes; then the learner's
        ``calibrate`` hook, if any, on their query logits."""
        assert self.val_sampler is not None
        self.model.eval()
        accuracies, all_logits, targets = [], [], []
        with torch.no_grad():
            for i in range(self.config.val_episodes):
                episode = self.val_sampler.episode(i)
                support_x, support_y, query_x, query_y = self._tensors(episode, self.val_set)
                with self._autocast():
                    logits = self.model(support_x, support_y, query_x, self.val_sampler.way)
                accuracies.append(float((logits.argmax(1) == query_y).float().mean()))
                all_logits.append(logits.detach().float())
                targets.append(query_y)
        calibrate = getattr(self.model.learner, "calibrate", None)
        if callable(calibrate):
            sampler = self.val_sampler
            self.calibration = {
                **calibrate(torch.cat(all_logits), torch.cat(targets)),
                "fitted_on": f"{len(accuracies)} validation episodes, {sampler.way}-way "
                f"{sampler.shot}-shot",
            }
        return mean_ci95(accuracies)

    # --- persistence -------------------------------------------------------------------------

    @property
    def state_path(self) -> str:
        return f"{self.config.out}.state"

    def save_state(self) -> None:
        _atomic_save(
            {
                "config": _resume_key(self.config),
                "step": self.step_done,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "best": self.best,
                "history": self.history,
                "wall_s": self.wall_s,
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(),
            },
            self.state_path,
        )

    def load_state(self) -> bool:
        if not os.path.exists(self.state_path):
            return False
        try:
            state = torch.load(self.state_path, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError, EOFError) as err:
            raise UsageError(f"cannot read resume state {self.state_path}: {err}") from None
        if state["config"] != _resume_key(self.config):
            diff = sorted(
                k for k, v in _resume_key(self.config).items() if state["config"].get(k) != v
            )
            raise UsageError(
                f"--resume: {self.state_path} was made with other settings "
                f"({', '.join(diff)}); use the same options or another --out"
            )
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError:
            raise UsageError(
                f"--resume: {self.state_path} holds another model (made by an older version?); "
                "use another --out"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_done, self.best = state["step"], state["best"]
        self.history, self.wall_s = state["history"], state["wall_s"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        return True

    def save_checkpoint(self, accuracy: float | None, ci95: float | None) -> None:
        cfg, plan = self.config, self.plan
        learned = self.model.describe()
        metadata = {
            "method": cfg.method,
            "backbone": self.arch["name"],
            "adapt": learned.get("adapt"),
            "inner_steps": learned.get("inner_steps"),
            "inner_lr": learned.get("inner_lr"),
            "learner": learned,
            "calibration": self.calibration,
            "dataset": os.path.abspath(cfg.data_dir),
            "train_classes": self.train_set.used_base_classes,
            "train_groups": self.train_set.used_groups,
            "val_classes": self.val_set.used_base_classes if self.val_set else [],
            "val_groups": self.val_set.used_groups if self.val_set else [],
            "classes_at_depth": self.train_set.depth,
            "rotations": list(self.train_set.rotations),
            "episodes": self.step_done * cfg.meta_batch,
            "meta_iterations": self.step_done,
            "way": cfg.way,
            "shot": cfg.shot,
            "query": cfg.query,
            "val_way": self.val_sampler.way if self.val_sampler else None,
            "val_shot": self.val_sampler.shot if self.val_sampler else None,
            "val_accuracy": accuracy,
            "val_ci95": ci95,
            "command": cfg.command,
            "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
            "seed": cfg.seed,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "device": plan.name,
            "wall_s": round(self.wall_s, 1),
            **self.init_meta,
        }
        encoder_state = {k: v.detach().cpu() for k, v in self.model.encoder.state_dict().items()}
        save_checkpoint(
            cfg.out,
            arch_name=self.arch["name"],
            arch_kwargs=self.arch["kwargs"],
            preprocessing=self.preprocessing,
            embed_dim=int(self.model.embed_dim),
            encoder_state=encoder_state,
            adapter_method=cfg.method,
            adapter_state=self.model.adapter_state(),
            metadata=metadata,
        )


def _resume_key(config: MetaTrainConfig) -> dict[str, Any]:
    """Settings that must match for ``--resume`` (the episode count may grow)."""
    skip = {
        "episodes",
        "resume",
        "command",
        "threads",
        "device",
        "extra",
        "state_every",
        "val_every",
        "preload",
        "time_limit",
    }
    return {k: v for k, v in asdict(config).items() if k not in skip}


def meta_train(config: MetaTrainConfig) -> Iterator[Progress | dict[str, Any]]:
    """Run (or resume) meta-training; see the module docstring for what is yielded."""
    if config.threads:
        torch.set_num_threads(config.threads)
    for name in ("way", "shot", "episodes", "meta_batch"):
        if getattr(config, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    plan = plan_device(config.device, image_size=config.image_size or 84)
    run = _Run(config, plan)
    resumed = config.resume and run.load_state()
    if resumed:
        yield {"resumed_at": run.step_done}
    total = config.episodes
    start_step, started = run.step_done, time.perf_counter()
    wall_before = run.wall_s
    last_val = run.best.get("val_accuracy")
    try:
        while run.step_done < total:
            loss, acc = run.step()
            elapsed = time.perf_counter() - started
            run.wall_s = wall_before + elapsed
            if config.time_limit is not None and elapsed >= config.time_limit:
                total = run.step_done  # out of time: validate and save as at the planned end
            rate = (run.step_done - start_step) / max(elapsed, 1e-9)
            yield Progress(
                run.step_done,
                total,
                f"loss {loss:.3f} acc {acc:.3f}",
                rate,
                (total - run.step_done) / rate if rate > 0 else None,
            )
            due = config.val_every > 0 and run.step_done % config.val_every == 0
            if run.val_sampler is not None and (due or run.step_done == total):
                accuracy, ci95 = run.validate()
                last_val = accuracy
                best = not run.best or accuracy > run.best["val_accuracy"]
                record = {
                    "episode": run.step_done,
                    "val_accuracy": accuracy,
                    "val_ci95": ci95,
                    "best": best,
                }
                run.history.append(record)
                if best:
                    run.best = {"val_accuracy": accuracy, "val_ci95": ci95, "step": run.step_done}
                    run.save_checkpoint(accuracy, ci95)
                yield record
            if run.val_sampler is None and run.step_done == total:
                run.save_checkpoint(None, None)
            if run.step_done % max(1, config.state_every) == 0 or run.step_done == total:
                run.save_state()
    except (KeyboardInterrupt, GeneratorExit):
        if not run.updating:
            run.save_state()
        raise
    yield {
        "done": True,
        "checkpoint": config.out,
        "state": run.state_path,
        "episodes": run.step_done,
        "best": run.best,
        "last_val_accuracy": last_val,
        "device": plan.name,
        "wall_s": run.wall_s,
    }


def run_meta_training(config: MetaTrainConfig, report=None) -> dict[str, Any]:
    """Drive :func:`meta_train` to the end; ``report(item)`` sees every yielded item."""
    result: dict[str, Any] = {}
    for item in meta_train(config):
        if report is not None:
            report(item)
        if isinstance(item, dict) and item.get("done"):
            result = item
    return result
