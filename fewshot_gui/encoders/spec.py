"""What an encoder is: :class:`EncoderSpec` (how to build it, with its preprocessing) and
:class:`LoadedEncoder` (one built for inference). Plain data; no registry here."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from fewshot_gui.data.preprocess import Preprocessing


def always_available() -> str | None:
    """``check_available`` of an encoder that needs nothing beyond its package."""
    return None


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder: its builders, its preprocessing, its embedding size and where its weights come from.

    * ``build()``: the model with its weights, in eval mode; forward maps normalised float
      ``(N, C, crop, crop)`` (see ``preprocessing``) to ``(N, embed_dim)``. It may raise
      :class:`~fewshot_gui.core.errors.WeightsUnavailableError` (one line); it never downloads
      unless the encoder says so in ``weights_source``.
    * ``check_available()``: None when ``build()`` can work right now, else the plain reason
      (no development paths; nothing is loaded or downloaded to find out).
    * ``architecture(**arch_kwargs)``: the bare network with random weights, for checkpoints
      (``arch_name`` names it in the file); None when the encoder cannot be saved in one.
    * ``pretrained``: ``build()`` gives learned weights (meta-training starts from them) rather
      than an initialisation.
    * ``weights_id``: changes whenever the weights behind the name change (part of the
      embedding-cache key); checkpoint files are told apart by their fingerprint instead.
    * ``family``: the name stands for the shipped meta-trained checkpoints
      ``<name>.pt`` / ``<name>-<method>.pt`` (see :mod:`fewshot_gui.encoders.registry`).
    """

    name: str
    description: str
    preprocessing: Preprocessing
    embed_dim: int
    weights_source: str
    build: Callable[[], nn.Module]
    check_available: Callable[[], str | None] = always_available
    checkpoint_path: Path | None = None
    arch_name: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    architecture: Callable[..., nn.Module] | None = None
    pretrained: bool = False
    weights_id: str = ""
    family: bool = False

    @property
    def cache_id(self) -> str:
        """Identity for embedding caches: the name (with ``weights_id``), plus the checkpoint
        file's fingerprint (path, size, mtime) so that a retrained or different file never reuses
        old embeddings."""
        name = f"{self.name}#{self.weights_id}" if self.weights_id else self.name
        if self.checkpoint_path is None:
            return name
        path = Path(self.checkpoint_path)
        try:
            stat = path.stat()
            key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            key = str(path)
        return f"{name}@{hashlib.sha1(key.encode()).hexdigest()[:12]}"


@dataclass
class LoadedEncoder:
    """A built encoder ready for inference on a device plan (eval mode, no gradients).

    ``adapter_state`` is the checkpoint's meta-learned adapter state when it was made for the
    requested method (or any method when none was requested), else None; ``adapter_method`` names
    the method the checkpoint's adapter state belongs to.
    """

    spec: EncoderSpec
    model: nn.Module
    adapter_state: dict[str, Any] | None
    metadata: dict[str, Any]
    adapter_method: str | None = None
