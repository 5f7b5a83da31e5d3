"""One meta-training run: data, encoder + learner, optimizer; a meta-iteration per :meth:`step`,
validation, and its files (the resume state and the best checkpoint)."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fewshot_gui.core.atomic import atomic_open
from fewshot_gui.core.device import DevicePlan
from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.episodes import ClassFolderDataset, EpisodeSampler, ImageStore, split_classes
from fewshot_gui.encoders.checkpoint import save_checkpoint
from fewshot_gui.training.encoder_setup import (
    freeze,
    freeze_batchnorm,
    pretrained,
    setup_encoder,
)
from fewshot_gui.training.episode_model import EpisodeModel, build_learner
from fewshot_gui.training.meta_config import MetaTrainConfig


def _atomic_save(obj: object, path: str) -> None:
    """``torch.save`` through the project's one atomic writer (core/atomic.py)."""
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def mean_ci95(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-interval ``1.96·std/√n`` (population std)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(1.96 * array.std() / math.sqrt(array.size))


class EpisodicRun:
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
        encoder, self.arch, self.preprocessing, _, self.init_meta = setup_encoder(config, full)
        self.pretrained = pretrained(self.arch["name"])
        freeze_until = config.freeze_until
        if freeze_until is None and self.pretrained:
            freeze_until = "blocks.5"
        self.frozen = freeze(encoder, freeze_until)
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
        freeze_batchnorm(self.model)

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
        ``calibrate`` hook, if any, on their embeddings (learners on embeddings only)."""
        assert self.val_sampler is not None
        self.model.eval()
        calibrate = getattr(self.model.learner, "calibrate", None)
        calibrate = None if self.model.full_network else calibrate
        accuracies, episodes = [], []
        with torch.no_grad():
            for i in range(self.config.val_episodes):
                episode = self.val_sampler.episode(i)
                support_x, support_y, query_x, query_y = self._tensors(episode, self.val_set)
                way = self.val_sampler.way
                with self._autocast():
                    if self.model.full_network:
                        logits = self.model(support_x, support_y, query_x, way)
                    else:
                        support, query = self.model.embed(support_x, query_x)
                        logits = self.model.embedding_logits(support, support_y, query, way)
                accuracies.append(float((logits.argmax(1) == query_y).float().mean()))
                if calibrate is not None:
                    episodes.append((support, support_y, query, query_y))
        if calibrate is not None and episodes:
            sampler = self.val_sampler
            self.calibration = {
                **calibrate(episodes),
                "fitted_on": f"{len(episodes)} validation episodes, {sampler.way}-way "
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
