"""Optimization family: MAML, first-order MAML, ANIL and Meta-SGD on fast weights.

:func:`inner_adapt` is the inner loop for any ``nn.Module``: fast weights are a plain dict used through
``torch.func.functional_call``; the module's own parameters are never changed; the gradient is taken
with ``create_graph=not first_order`` (second-order MAML, Finn et al. 2017, vs first-order). ``lr`` is a
float or, for Meta-SGD (Li et al. 2017), a dict of per-parameter learning-rate tensors.

At labeling time every method adapts a linear head on the (cached) embeddings: logits
``scale * (z @ W.T + b)`` on L2-normalised ``z``, initialised ProtoMAML-style from the prototypes
``p_c`` (``W_c = 2 p_c``, ``b_c = -|p_c|²``, a nearest-prototype classifier, Triantafillou et al.
2020; prototypes L2-normalised too, so it starts as the cosine classifier), then ``steps`` gradient
steps on the class-balanced support cross-entropy (so 1-shot and imbalanced classes work). With
fixed embeddings the four methods differ only in their meta-learned state (scale, inner rates,
steps) and defaults; ``anil`` is the head-only method by definition.

:class:`HeadLearner` is the differentiable version for meta-training,
``forward(support (S, D), support_y (S,), query (Q, D), n_way) -> logits (Q, n_way)``, with a
learnable ``log_scale``, a buffer ``inner_steps`` and, for Meta-SGD, learnable inner rates
``lr_weight`` (1, D) and ``lr_bias`` (1,), shared across classes (the class count varies per task).
Its ``state_dict()`` is the adapter ``state``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fewshot_gui.adapters.base import Adapter, balanced_weights, class_means, l2_normalize
from fewshot_gui.adapters.registry import register_adapter

Params = dict[str, torch.Tensor]


def inner_adapt(
    module: nn.Module,
    params: Mapping[str, torch.Tensor],
    loss_fn: Callable[[nn.Module, Params], torch.Tensor],
    steps: int,
    lr: float | Mapping[str, torch.Tensor],
    first_order: bool = False,
) -> Params:
    """``steps`` gradient steps from ``params``; returns the fast weights (a new dict).

    ``loss_fn(module, fast)`` returns the support loss, typically
    ``F.cross_entropy(functional_call(module, fast, (x,)), y)``; ``params`` may be a subset of the
    module's parameters (e.g. only the head, ANIL). Tensors that do not require grad are made leaves
    that do. Gradients flow back to ``params`` (and to ``lr`` tensors) for the outer loop.
    """
    fast = {k: v if v.requires_grad else v.detach().requires_grad_() for k, v in params.items()}
    for _ in range(steps):
        with torch.enable_grad():
            loss = loss_fn(module, fast)
            grads = torch.autograd.grad(loss, list(fast.values()), create_graph=not first_order)
        fast = {
            k: w - (lr[k] if isinstance(lr, Mapping) else lr) * g
            for (k, w), g in zip(fast.items(), grads, strict=True)
        }
    return fast


class ScaledLinearHead(nn.Module):
    """``scale * (z @ weight.T + bias)``; ``weight`` / ``bias`` are always given as fast weights."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(0, 0))
        self.bias = nn.Parameter(torch.empty(0))

    def forward(self, z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return scale * (z @ self.weight.T + self.bias)


def proto_init(z: torch.Tensor, y: torch.Tensor, n_way: int) -> Params:
    """ProtoMAML head init from unit features ``z`` (S, D): ``W = 2p`` (C, D), ``b = -|p|²`` (C,).

    The prototypes are L2-normalised too: a 1-shot prototype is a unit vector while a many-shot mean
    is shorter, which would otherwise bias the init against classes with few examples.
    """
    p = l2_normalize(class_means(z, y, n_way))
    return {"weight": 2 * p, "bias": -(p * p).sum(1)}


class HeadLearner(nn.Module):
    """Differentiable head adaptation on embeddings (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        steps: int = 10,
        lr: float = 0.5,
        first_order: bool = False,
        learn_lr: bool = False,
        scale: float = 5.0,
    ) -> None:
        super().__init__()
        self.dim, self.first_order = dim, first_order
        self.register_buffer("inner_steps", torch.tensor(steps))  # saved with the state
        self.head = ScaledLinearHead()
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.lr_weight = nn.Parameter(torch.full((1, dim), lr), requires_grad=learn_lr)
        self.lr_bias = nn.Parameter(torch.full((1,), lr), requires_grad=learn_lr)

    def adapt(self, support: torch.Tensor, support_y: torch.Tensor, n_way: int) -> Params:
        """Fast head weights ``{"weight": (C, D), "bias": (C,)}`` adapted on the support set."""
        z = l2_normalize(support)
        scale, w = self.log_scale.exp(), balanced_weights(support_y, n_way)

        def loss_fn(head: nn.Module, fast: Params) -> torch.Tensor:
            logits = functional_call(head, fast, (z, scale))
            return (F.cross_entropy(logits, support_y, reduction="none") * w).mean()

        lrs = {"weight": self.lr_weight, "bias": self.lr_bias}
        init = proto_init(z, support_y, n_way)
        steps = int(self.inner_steps)
        return inner_adapt(self.head, init, loss_fn, steps, lrs, self.first_order)

    def predict(self, fast: Params, query: torch.Tensor) -> torch.Tensor:
        """Logits (Q, C) of ``query`` (Q, D) under fast head weights."""
        return functional_call(self.head, fast, (l2_normalize(query), self.log_scale.exp()))

    def forward(
        self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, n_way: int
    ) -> torch.Tensor:
        return self.predict(self.adapt(support, support_y, n_way), query)


class _HeadAdapter(Adapter):
    """Shared adapter: fit = adapt the head on the support set; predict = one matrix product."""

    family = "optimization"
    first_order = False
    learn_lr = False
    default_steps, default_lr = 10, 0.5

    def __init__(
        self,
        *,
        state: dict[str, torch.Tensor] | None = None,
        steps: int | None = None,
        lr: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(state=state, **options)
        self.steps, self.lr = steps, lr
        self.learner: Any = None  # HeadLearner, or any learner with adapt() and log_scale
        self._fast: Params = {}

    def _make_learner(self) -> HeadLearner:
        steps = self.default_steps if self.steps is None else self.steps
        lr = self.default_lr if self.lr is None else self.lr
        learner = HeadLearner(self.dim, steps, lr, self.first_order, self.learn_lr)
        if self._state:  # meta-learned scale, rates and steps; explicit options override them
            learner.load_state_dict(
                {k: v.to(learner.state_dict()[k].dtype) for k, v in self._state.items()}
            )
            if self.lr is not None:
                learner.lr_weight.data.fill_(self.lr)
                learner.lr_bias.data.fill_(self.lr)
            if self.steps is not None:
                learner.inner_steps.fill_(self.steps)
        return learner

    def _refit(self) -> None:
        if self.learner is None or self.learner.dim != self.dim:
            self.learner = self._make_learner()
        fast = self.learner.adapt(self._x, self.targets, len(self._classes))
        self._fast = {k: v.detach() for k, v in fast.items()}

    def feature_kind(self) -> str:
        return "inverse-norm"

    def _logits(self, queries: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """The adapted head on unit queries: ``scale * (q / |q| @ W.T + b)``."""
        assert self.learner is not None and features is not None
        w, b = self._fast["weight"], self._fast["bias"]
        return self.learner.log_scale.exp() * ((queries @ w.T) * features + b)

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        assert self.learner is not None
        out.update(learner=self.learner.state_dict(), fast=dict(self._fast))
        return out

    def load_state(self, state: dict[str, Any]) -> Adapter:
        super().load_state(state)
        self._state = state["learner"]
        self.learner = self._make_learner()
        self._fast = dict(state["fast"])
        return self


@register_adapter
class MAMLAdapter(_HeadAdapter):
    """Second-order MAML (the head is adapted on cached embeddings at labeling time)."""

    name = "maml"


@register_adapter
class FOMAMLAdapter(_HeadAdapter):
    """First-order MAML."""

    name = "fomaml"
    first_order = True


@register_adapter
class ANILAdapter(_HeadAdapter):
    """ANIL: inner loop on the head only — the fast choice for live labeling."""

    name = "anil"
    default_steps = 5


@register_adapter
class MetaSGDAdapter(_HeadAdapter):
    """Meta-SGD: learned per-parameter inner rates (from ``state``; ``lr`` when untrained)."""

    name = "metasgd"
    learn_lr = True
    default_steps = 1
