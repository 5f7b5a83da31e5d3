"""Everything a meta-training run depends on (recorded in its checkpoint and resume state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
