"""An encoder driven by one method's learner, episode by episode (no method mathematics here).

The learner is the adapter class's own (:meth:`~fewshot_gui.adapters.base.Adapter.learner`):
``forward(support (S, D), support_y (S,), query (Q, D), n_way) -> logits (Q, n_way)`` on the
encoder's embeddings, or, for a learner with ``adapts_encoder`` (full-network MAML), ``forward(
encoder, support_x, support_y, query_x, n_way)`` on the images. The outer loop minimises the
cross-entropy of the query logits.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from fewshot_gui.adapters.registry import adapter_class
from fewshot_gui.core.errors import UsageError

SETTINGS = ("steps", "lr", "adapt", "pretrained")
"""Meta-training settings handed to a learner that names them (see ``Adapter.learner``)."""


def build_learner(
    method: str, dim: int, settings: dict[str, Any], options: dict[str, Any] | None = None
) -> nn.Module:
    """``method``'s learner for ``dim``-d embeddings, given the settings its signature names.

    A setting the learner does not take is dropped, unless the user chose it (``adapt="full"``
    for a method without a full-network learner): then, like an unknown option, a UsageError.
    """
    cls = adapter_class(method)
    if not cls.trainable():
        raise UsageError(f"method '{method}' cannot be meta-trained (it has no learner)")
    parameters = inspect.signature(cls.learner).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    given = {}
    for key in SETTINGS:
        if takes_any or key in parameters:
            given[key] = settings.get(key)
        elif key == "adapt" and settings.get(key) not in (None, "head"):
            raise UsageError(f"--adapt full is for maml/fomaml; '{method}' adapts no network")
    given = {k: v for k, v in given.items() if v is not None}
    try:
        return cls.learner(dim, **given, **(options or {}))
    except TypeError as error:  # an option this learner does not take
        raise UsageError(f"method '{method}': {error}") from None


class EpisodeModel(nn.Module):
    """Encoder + learner. ``forward(support_x, support_y, query_x, way) -> (Q, way)`` logits."""

    def __init__(self, encoder: nn.Module, learner: nn.Module, embed_dim: int) -> None:
        super().__init__()
        self.encoder, self.learner, self.embed_dim = encoder, learner, embed_dim

    @property
    def full_network(self) -> bool:
        """The learner adapts the encoder itself, on images."""
        return bool(getattr(self.learner, "adapts_encoder", False))

    def embedding_logits(
        self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, way: int
    ) -> torch.Tensor:
        """The learner on embeddings: ``(S, D)``, ``(S,)``, ``(Q, D)`` → ``(Q, way)`` logits."""
        with torch.enable_grad():  # inner loops need gradients, in validation too
            return self.learner(support, support_y, query, way)

    def embed(
        self, support_x: torch.Tensor, query_x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings ``(S, D)``, ``(Q, D)`` float of the support and query images (one pass)."""
        embeddings = self.encoder(torch.cat([support_x, query_x])).float()
        return embeddings[: len(support_x)], embeddings[len(support_x) :]

    def forward(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, way: int
    ) -> torch.Tensor:
        if self.full_network:
            return self.learner(self.encoder, support_x, support_y, query_x, way)
        support, query = self.embed(support_x, query_x)
        return self.embedding_logits(support, support_y, query, way)

    def adapter_state(self) -> dict[str, Any]:
        """What the labeling-time adapter needs from meta-training (CPU float32 tensors)."""
        own = getattr(self.learner, "adapter_state", None)
        state = own() if callable(own) else self.learner.state_dict()
        return {
            k: v.detach().float().cpu() if isinstance(v, torch.Tensor) else v
            for k, v in state.items()
        }

    def describe(self) -> dict[str, Any]:
        """The learner's settings for the checkpoint's metadata."""
        own = getattr(self.learner, "describe", None)
        return dict(own()) if callable(own) else {}
