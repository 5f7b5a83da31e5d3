"""The one checkpoint format of fewshot-gui: an encoder, its preprocessing, and the meta-learned
state of one adapter, in a single file.

A checkpoint is ``torch.save`` of a plain dict (loadable with ``torch.load(weights_only=True)``:
only str/int/float/bool/None, lists, tuples, dicts and tensors)::

    {
      "format": "fewshot-gui-checkpoint",
      "version": 1,
      "arch": {"name": str,                     # a registered encoder with an architecture:
               "kwargs": {...}},                 # conv4, efficientnet-lite0, … and its arguments
      "preprocessing": {...},                    # Preprocessing.to_dict()
      "embed_dim": int,                          # the encoder's output size D
      "encoder_state": {name: Tensor},           # the encoder's state_dict
      "adapter": {"method": str | None,          # e.g. "memory"; None when no adapter state
                  "state": {name: Tensor | plain}},
      "metadata": {...},                         # how it was made: command, data set, episodes,
    }                                            # validation accuracy, date, …

Floating tensors may be stored as float16 (``half=True``) to keep shipped files small; they are
always loaded back as float32. Files are written through :func:`~fewshot_gui.core.atomic.atomic_open`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fewshot_gui.core.atomic import atomic_open
from fewshot_gui.core.errors import CheckpointError
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.catalog import find_encoder, list_encoders

FORMAT = "fewshot-gui-checkpoint"
VERSION = 1


def architecture_names() -> list[str]:
    """Registered encoders whose bare network a checkpoint can name in ``arch.name``."""
    return [spec.name for spec in list_encoders() if spec.architecture is not None]


def build_architecture(name: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """The bare network of registered encoder ``name`` (its ``architecture``) with random weights;
    nothing is downloaded. Raises :class:`CheckpointError` when no encoder provides it."""
    spec = find_encoder(name)
    if spec is None or spec.architecture is None:
        raise CheckpointError(
            f"unknown encoder architecture {name!r} (known: {', '.join(architecture_names())})"
        )
    return spec.architecture(**dict(kwargs or {}))


def _plain(value: Any, half: bool, where: str) -> Any:
    """``value`` as weights-only-loadable data: tensors detached on the CPU (float16 if ``half``),
    numpy values and paths converted; anything else raises TypeError."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        if half and tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
        return tensor.contiguous()
    if isinstance(value, np.ndarray):
        return _plain(torch.from_numpy(np.ascontiguousarray(value)), half, where)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, half, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v, half, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(
        f"checkpoint field {where} holds a {type(value).__name__}, which cannot be saved"
    )


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype == torch.float16 else value
    if isinstance(value, dict):
        return {k: _to_float32(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_float32(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_float32(v) for v in value)
    return value


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    arch_name: str,
    arch_kwargs: Mapping[str, Any] | None,
    preprocessing: Preprocessing | Mapping[str, Any],
    embed_dim: int,
    encoder_state: Mapping[str, torch.Tensor],
    adapter_method: str | None = None,
    adapter_state: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write a checkpoint atomically (a crash leaves the previous file intact); returns the path.

    ``half=True`` stores floating tensors as float16 (loaded back as float32).
    """
    spec = find_encoder(arch_name)
    if spec is None or spec.architecture is None:
        raise CheckpointError(f"unknown encoder architecture {arch_name!r}")
    if isinstance(preprocessing, Preprocessing):
        preprocessing = preprocessing.to_dict()
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": {"name": arch_name, "kwargs": _plain(dict(arch_kwargs or {}), False, "arch")},
        "preprocessing": _plain(dict(preprocessing), False, "preprocessing"),
        "embed_dim": int(embed_dim),
        "encoder_state": _plain(dict(encoder_state), half, "encoder_state"),
        "adapter": {
            "method": adapter_method,
            "state": _plain(dict(adapter_state or {}), half, "adapter.state"),
        },
        "metadata": _plain(dict(metadata or {}), False, "metadata"),
    }
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)
    return path


def save_with_adapter(
    path: str | os.PathLike[str],
    ckpt: Mapping[str, Any],
    adapter_method: str | None,
    adapter_state: Mapping[str, Any],
    metadata: Mapping[str, Any],
    half: bool,
) -> Path:
    """Write ``ckpt`` (as loaded) to ``path`` with a new adapter state and metadata."""
    return save_checkpoint(
        path,
        arch_name=ckpt["arch"]["name"],
        arch_kwargs=ckpt["arch"]["kwargs"],
        preprocessing=ckpt["preprocessing"],
        embed_dim=ckpt["embed_dim"],
        encoder_state=ckpt["encoder_state"],
        adapter_method=adapter_method,
        adapter_state=adapter_state,
        metadata=metadata,
        half=half,
    )


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a checkpoint (on the CPU, float32). Raises :class:`CheckpointError` with a
    plain message for a missing file, a file that is not a checkpoint, or a newer format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a damaged file
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable fewshot-gui checkpoint ({reason})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fewshot-gui checkpoint")
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(
            f"{path} is a damaged fewshot-gui checkpoint (bad version {version!r})"
        )
    if version > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer fewshot-gui (checkpoint version {version}; this one reads "
            f"up to {VERSION}): update fewshot-gui"
        )
    _validate(path, data)
    data["encoder_state"] = _to_float32(data["encoder_state"])
    adapter = data.get("adapter") or {}
    data["adapter"] = {
        "method": adapter.get("method"),
        "state": _to_float32(adapter.get("state") or {}),
    }
    data["metadata"] = data.get("metadata") or {}
    return data


def _validate(path: Path, data: dict[str, Any]) -> None:
    def damaged(what: str) -> CheckpointError:
        return CheckpointError(f"{path} is a damaged fewshot-gui checkpoint ({what})")

    arch = data.get("arch")
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise damaged("no architecture")
    if not isinstance(arch.get("kwargs", {}), dict):
        raise damaged("bad architecture arguments")
    if not isinstance(data.get("embed_dim"), int) or data["embed_dim"] <= 0:
        raise damaged("no embedding size")
    state = data.get("encoder_state")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise damaged("no encoder weights")
    try:
        Preprocessing.from_dict(data.get("preprocessing") or {})
    except (TypeError, ValueError):
        raise damaged("bad preprocessing") from None
    if not isinstance(data.get("adapter") or {}, dict) or not isinstance(
        data.get("metadata") or {}, dict
    ):
        raise damaged("bad adapter or metadata")


def preprocessing_of(checkpoint: Mapping[str, Any]) -> Preprocessing:
    """The :class:`Preprocessing` stored in a loaded checkpoint."""
    return Preprocessing.from_dict(dict(checkpoint["preprocessing"]))


def build_from_checkpoint(checkpoint: Mapping[str, Any]) -> nn.Module:
    """The encoder of a loaded checkpoint, weights in place, eval mode; nothing is downloaded.
    Forward: normalised float ``(N, C, H, W)`` → ``(N, embed_dim)``."""
    arch = checkpoint["arch"]
    try:
        model = build_architecture(arch["name"], arch.get("kwargs"))
    except TypeError as error:
        raise CheckpointError(f"checkpoint architecture arguments do not fit: {error}") from None
    try:
        model.load_state_dict(checkpoint["encoder_state"], strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"checkpoint weights do not fit a {arch['name']} encoder ({first[:160]})"
        ) from None
    model.embed_dim = int(checkpoint["embed_dim"])
    return model.eval()
