"""The encoder a meta-training run starts from: a checkpoint's (``--init``), a pretrained backbone
from the encoder registry, or a backbone with random weights sized for the data; freezing."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from torch import nn

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.episodes import ClassFolderDataset
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.catalog import find_encoder
from fewshot_gui.encoders.checkpoint import (
    build_architecture,
    build_from_checkpoint,
    load_checkpoint,
)
from fewshot_gui.training.meta_config import MetaTrainConfig

BACKBONES = ("conv4", "resnet12", "efficientnet-lite0")


def pretrained(name: str) -> bool:
    """Whether the registry's encoder ``name`` starts from learned (e.g. ImageNet) weights."""
    spec = find_encoder(name)
    return spec is not None and spec.pretrained


def build_encoder(arch: dict[str, Any]) -> nn.Module:
    """``{"name", "kwargs"}`` → a fresh module from the encoder registry (its learned weights for
    pretrained backbones, else random), with ``embed_dim``."""
    spec = find_encoder(arch["name"])
    if spec is not None and spec.pretrained:
        return spec.build()
    return build_architecture(arch["name"], arch.get("kwargs"))


def grayscale(dataset: ClassFolderDataset, sample: int = 8) -> bool:
    paths = dataset.paths[:: max(1, len(dataset.paths) // sample)][:sample]
    modes = []
    for path in paths:
        try:
            with Image.open(path) as image:
                modes.append(image.mode)
        except OSError:
            continue
    return bool(modes) and all(m in ("1", "L", "LA", "I", "I;16", "F") for m in modes)


def setup_encoder(
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
    channels = config.channels or (1 if grayscale(dataset) else 3)
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


def freeze(encoder: nn.Module, prefix: str | None) -> int:
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


def freeze_batchnorm(module: nn.Module) -> None:
    """BatchNorm keeps its (ImageNet) statistics: non-transductive in training as in use."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
