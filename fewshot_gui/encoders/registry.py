"""Resolving and loading encoders: a registered name (case-insensitive) or a checkpoint file → an
:class:`EncoderSpec`, then a :class:`LoadedEncoder` on a device.

The names are those of :mod:`fewshot_gui.encoders.catalog` (built-ins and plug-ins, one table).
A *family* encoder (``omniglot``, ``photos``) stands for shipped meta-trained checkpoints in
``checkpoints/`` of :func:`~fewshot_gui.core.paths.resources_dir`: ``<family>-<method>.pt`` (one
per adaptation method) or ``<family>.pt`` (every method's state in one file); the method being
used picks the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from fewshot_gui.adapters.registry import adapter_class, adapter_names
from fewshot_gui.core.device import DevicePlan
from fewshot_gui.core.errors import CheckpointError, UsageError, WeightsUnavailableError
from fewshot_gui.core.paths import resources_dir
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.backbones import CONV4_PREPROCESSING, OMNIGLOT_PREPROCESSING
from fewshot_gui.encoders.catalog import (
    encoder_names,
    find_encoder,
    list_encoders,
    name_problem,
    register_encoder,
    reload_encoders,
)
from fewshot_gui.encoders.checkpoint import build_from_checkpoint, load_checkpoint, preprocessing_of
from fewshot_gui.encoders.pretrained import OFFLINE_ALTERNATIVES
from fewshot_gui.encoders.spec import EncoderSpec, LoadedEncoder

__all__ = [
    "CONV4_PREPROCESSING",
    "OMNIGLOT_PREPROCESSING",
    "EncoderSpec",
    "LoadedEncoder",
    "encoder_names",
    "list_encoders",
    "register_encoder",
    "reload_encoders",
]

# --- checkpoint families ------------------------------------------------------------------------


def family_checkpoint(family: str, method: str) -> Path:
    """Where ``family``'s checkpoint for ``method`` lives (whether or not it exists)."""
    return resources_dir() / "checkpoints" / f"{family}-{method}.pt"


def _fallback_order(method: str | None) -> tuple[str, ...]:
    """Methods whose checkpoint may serve ``method``, closest first: its own, its family's (in the
    adapter registry's order), then metric's; any other file comes last."""
    names = adapter_names()
    method = method or "metric"
    family = adapter_class(method).family if method in names else None
    same = [m for m in names if family is not None and adapter_class(m).family == family]
    return tuple(dict.fromkeys([method, *same, "metric", *names]))


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


def in_method_order(methods: Iterable[str]) -> list[str]:
    """``methods`` without repeats, registered ones first in the adapter registry's order, then
    the others by name."""
    order = adapter_names()
    return sorted(set(methods), key=lambda m: (order.index(m) if m in order else len(order), m))


def checkpoint_methods(adapter: Mapping[str, Any]) -> list[str]:
    """The methods whose meta-learned state a checkpoint's ``adapter`` entry carries (a merged
    ``multi`` file: one per ``"<method>."`` prefix)."""
    method, state = adapter.get("method"), adapter.get("state") or {}
    if method == "multi":
        return in_method_order(key.split(".", 1)[0] for key in state if "." in key)
    return [method] if method else []


def family_checkpoints(family: str) -> list[tuple[Path, list[str]]]:
    """Every existing checkpoint file of ``family`` (merged file first) and the methods whose
    meta-learned state it carries (none for a file that cannot be read)."""
    folder = resources_dir() / "checkpoints"
    files = [folder / f"{family}.pt", *sorted(folder.glob(f"{family}-*.pt"))]
    found = []
    for path in files:
        if not path.is_file():
            continue
        try:
            methods = checkpoint_methods(load_checkpoint(path)["adapter"])
        except CheckpointError:
            methods = []
        found.append((path, methods))
    return found


def _family_reason(family: str, command: str) -> str | None:
    if find_family_checkpoint(family) is not None:
        return None
    out = family_checkpoint(family, "metric")
    return f"not meta-trained yet: run {command.format(method='metric', out=out)}"


def _family_build(family: str, command: str) -> nn.Module:
    path = find_family_checkpoint(family)
    if path is None:
        reason = _family_reason(family, command)
        raise WeightsUnavailableError(f"{family}: {reason} (or use {OFFLINE_ALTERNATIVES})")
    return build_from_checkpoint(load_checkpoint(path))


def family_spec(
    name: str, description: str, preprocessing: Preprocessing, embed_dim: int, command: str
) -> EncoderSpec:
    """A family encoder; ``command`` makes its checkpoint (``{method}`` and ``{out}`` filled in).
    ``preprocessing`` and ``embed_dim`` are shown in lists; loading uses the file's own."""
    return EncoderSpec(
        name=name,
        description=description,
        preprocessing=preprocessing,
        embed_dim=embed_dim,
        weights_source="meta-trained, shipped with fewshot-gui",
        build=lambda: _family_build(name, command),
        check_available=lambda: _family_reason(name, command),
        family=True,
    )


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

    A family name resolves to the family checkpoint that best serves ``method`` (e.g. ``maml``
    falls back to ``fomaml``, ``anil``, then ``metric``); without any file it returns the family's
    spec, whose ``check_available()`` says how to make one. Unknown names raise
    :class:`UsageError` listing the known ones; a bad checkpoint raises CheckpointError.
    """
    text = os.fspath(name_or_path)
    key = text.strip().lower()
    spec = find_encoder(key) if name_problem(key) is None else None
    if spec is not None:
        if spec.family:
            path = find_family_checkpoint(key, method)
            if path is not None:
                return checkpoint_spec(path, name=path.stem)
        return spec
    if _looks_like_path(text):
        return checkpoint_spec(text)
    raise UsageError(
        f"unknown encoder {text!r}: choose one of {', '.join(encoder_names())} "
        "or give a checkpoint file"
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
    """Key of an encoder's embeddings in the on-disk cache: weights and preprocessing (an encoder
    whose preprocessing changes gets a new key, so a cache never changes an answer)."""
    return f"{spec.cache_id}|{spec.preprocessing.to_dict()}"


def default_encoder_name() -> str:
    """``photos`` when one of its checkpoints is shipped, else ``efficientnet-lite0``."""
    return "photos" if find_family_checkpoint("photos") is not None else "efficientnet-lite0"


def __getattr__(name: str) -> str:
    if name == "DEFAULT_ENCODER":  # computed on access: checkpoints may appear while running
        return default_encoder_name()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
