"""Episode learners for meta-training: an encoder plus one adaptation method, giving query logits.

Every method maps an episode ``support (S,C,H,W) float, support_y (S,), query (Q,C,H,W)`` to query
logits ``(Q, way)``; the outer loop minimises cross-entropy on them. Methods:

* ``metric`` — Prototypical Networks: logits = −squared-euclidean distance to class means.
* ``memory`` — key/value memory: support embeddings written as keys (class as value), queries read
  by attention through learned key/query projections and a learned temperature (the memory adapter's
  learner when ``adapters/memory.py`` provides one, else :class:`MemoryReader`).
* ``anil`` — head-only inner loop on embeddings; ``metasgd`` — the same with learned per-feature
  inner rates; ``maml`` (second order) / ``fomaml`` (first order) — inner loop over the whole
  network (fast weights via ``torch.func.functional_call``; the encoder is never mutated) or over
  the head only (``adapt="head"``, the default for large pretrained backbones).

The head of the optimization family is initialised from the support prototypes (ProtoMAML:
``W = 2·c_k``, ``b = −‖c_k‖²``), so it works for any number of classes at labeling time and starts
where a metric-trained encoder already is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

METHODS = ("metric", "memory", "maml", "fomaml", "anil", "metasgd", "metalstm")
OPTIMIZATION = ("maml", "fomaml", "anil", "metasgd")


def class_means(embeddings: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """``(S, D)``, ``(S,)`` → prototypes ``(way, D)`` (mean per class; works for imbalanced sets)."""
    one_hot = F.one_hot(labels, way).to(embeddings.dtype)  # (S, way)
    counts = one_hot.sum(0).clamp_min(1).unsqueeze(1)
    return one_hot.T @ embeddings / counts


def squared_distance_logits(queries: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """``(Q, D)``, ``(C, D)`` → ``(Q, C)`` negative squared euclidean distances."""
    return -(
        queries.pow(2).sum(1, keepdim=True)
        - 2 * queries @ prototypes.T
        + prototypes.pow(2).sum(1).unsqueeze(0)
    )


def prototype_head(
    support: torch.Tensor, support_y: torch.Tensor, way: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """ProtoMAML head from support embeddings: ``W (way, D) = 2·c``, ``b (way,) = −‖c‖²``."""
    protos = class_means(support, support_y, way)
    return 2 * protos, -protos.pow(2).sum(1)


class MemoryReader(nn.Module):
    """Key/value memory read (fallback learner when ``adapters/memory.py`` has none).

    Keys = key-projected support embeddings, values = their classes; a query attends over keys by
    cosine similarity × learned temperature; class evidence = attention mass per class.
    ``forward(support (S,D), support_y (S,), query (Q,D), n_way) -> logits (Q, n_way)`` (log-evidence).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(dim, dim)
        self.query_proj = nn.Linear(dim, dim)
        for layer in (self.key_proj, self.query_proj):
            nn.init.eye_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.log_temperature = nn.Parameter(torch.tensor(2.3))  # exp ≈ 10

    def forward(
        self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, n_way: int
    ) -> torch.Tensor:
        keys = F.normalize(self.key_proj(support), dim=1)
        queries = F.normalize(self.query_proj(query), dim=1)
        attention = (self.log_temperature.exp() * queries @ keys.T).softmax(1)  # (Q, S)
        evidence = attention @ F.one_hot(support_y, n_way).to(attention.dtype)  # (Q, n_way)
        return evidence.clamp_min(1e-8).log()


class HeadRates(nn.Module):
    """Meta-SGD inner rates for the prototype head: per feature for ``W``, one for ``b``."""

    def __init__(self, dim: int, lr: float) -> None:
        super().__init__()
        self.weight_lr = nn.Parameter(torch.full((dim,), float(lr)))
        self.bias_lr = nn.Parameter(torch.tensor(float(lr)))


def adapt_head(
    support: torch.Tensor,
    support_y: torch.Tensor,
    way: int,
    steps: int,
    lr: float | HeadRates,
    first_order: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inner loop on the prototype head over fixed support embeddings ``(S, D)`` → ``(W, b)``."""
    weight, bias = prototype_head(support, support_y, way)
    with torch.enable_grad():
        if not weight.requires_grad:  # evaluation without an outer graph
            weight, bias = weight.detach().requires_grad_(), bias.detach().requires_grad_()
        for _ in range(steps):
            loss = F.cross_entropy(support @ weight.T + bias, support_y)
            gw, gb = torch.autograd.grad(
                loss, (weight, bias), create_graph=not first_order, retain_graph=True
            )  # retained: the outer loss still needs the path from the prototypes
            if isinstance(lr, HeadRates):
                weight, bias = weight - lr.weight_lr * gw, bias - lr.bias_lr * gb
            else:
                weight, bias = weight - lr * gw, bias - lr * gb
    return weight, bias


class EpisodeModel(nn.Module):
    """Encoder + method learner. ``forward(support_x, support_y, query_x, way) -> (Q, way)``."""

    def __init__(
        self,
        encoder: nn.Module,
        method: str,
        embed_dim: int,
        *,
        inner_steps: int = 5,
        inner_lr: float = 0.1,
        adapt: str = "head",
        learner: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}")
        self.encoder, self.method, self.embed_dim = encoder, method, embed_dim
        self.inner_steps, self.inner_lr, self.adapt = inner_steps, inner_lr, adapt
        self.learner: nn.Module | None = learner
        if learner is None and method == "memory":
            self.learner = MemoryReader(embed_dim)
        if learner is None and method == "metasgd":
            self.learner = HeadRates(embed_dim, inner_lr)

    @property
    def full_network(self) -> bool:
        return self.method in ("maml", "fomaml") and self.adapt == "full"

    def embedding_logits(
        self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, way: int
    ) -> torch.Tensor:
        """The method on embeddings: ``(S,D)``, ``(S,)``, ``(Q,D)`` → ``(Q, way)`` logits."""
        if self.method == "metric":
            return squared_distance_logits(query, class_means(support, support_y, way))
        if self.method == "memory" or not isinstance(self.learner, HeadRates | None):
            assert self.learner is not None  # the adapter's own learner
            with torch.enable_grad():  # inner loops need gradients, in validation too
                return self.learner(support, support_y, query, way)
        lr = self.learner if self.method == "metasgd" else self.inner_lr
        first_order = self.method == "fomaml"
        weight, bias = adapt_head(support, support_y, way, self.inner_steps, lr, first_order)
        return query @ weight.T + bias

    def forward(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, way: int
    ) -> torch.Tensor:
        if self.full_network:
            return self._full_network_logits(support_x, support_y, query_x, way)
        embeddings = self.encoder(torch.cat([support_x, query_x])).float()
        support, query = embeddings[: len(support_x)], embeddings[len(support_x) :]
        return self.embedding_logits(support, support_y, query, way)

    def _full_network_logits(
        self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, way: int
    ) -> torch.Tensor:
        """MAML over every encoder parameter plus the prototype head (fast weights as a dict)."""
        first_order = self.method == "fomaml"
        params = {n: p for n, p in self.encoder.named_parameters() if p.requires_grad} or {
            n: p.detach().requires_grad_() for n, p in self.encoder.named_parameters()
        }  # a frozen encoder (evaluation): adapt a copy of every parameter
        with torch.enable_grad():
            weight, bias = prototype_head(self.encoder(support_x).float(), support_y, way)
            if not weight.requires_grad:
                weight, bias = weight.detach().requires_grad_(), bias.detach().requires_grad_()
            names = list(params)
            for _ in range(self.inner_steps):
                emb = functional_call(self.encoder, params, (support_x,)).float()
                loss = F.cross_entropy(emb @ weight.T + bias, support_y)
                grads = torch.autograd.grad(
                    loss,
                    [*params.values(), weight, bias],
                    create_graph=not first_order,
                    retain_graph=True,  # first order: the prototype head's graph is still needed
                )
                params = {
                    n: p - self.inner_lr * g
                    for n, p, g in zip(names, params.values(), grads, strict=False)
                }
                weight = weight - self.inner_lr * grads[-2]
                bias = bias - self.inner_lr * grads[-1]
            query = functional_call(self.encoder, params, (query_x,)).float()
            return query @ weight.T + bias

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """What the labeling-time adapter needs from meta-training (CPU float32 tensors)."""
        state: dict[str, torch.Tensor] = {}
        if self.learner is not None:
            state.update(
                {k: v.detach().float().cpu() for k, v in self.learner.state_dict().items()}
            )
        return state
