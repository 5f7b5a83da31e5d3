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

:class:`FullNetworkLearner` (``maml`` / ``fomaml`` with ``adapt="full"``, the default on backbones
trained from scratch) runs the same :func:`inner_adapt` over every trainable encoder parameter and
a linear head on the raw embeddings started at the prototypes (``W = 2c``, ``b = -|c|²``, plain
cross-entropy), on the episode's images; it has no state of its own (the encoder is the result).
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
from fewshot_gui.core.errors import UsageError

Params = dict[str, torch.Tensor]


def inner_adapt(
    module: nn.Module,
    params: Mapping[str, torch.Tensor],
    loss_fn: Callable[[nn.Module, Params], torch.Tensor],
    steps: int,
    lr: float | Mapping[str, torch.Tensor],
    first_order: bool = False,
    retain_graph: bool = False,
) -> Params:
    """``steps`` gradient steps from ``params``; returns the fast weights (a new dict).

    ``loss_fn(module, fast)`` returns the support loss, typically
    ``F.cross_entropy(functional_call(module, fast, (x,)), y)``; ``params`` may be a subset of the
    module's parameters (e.g. only the head, ANIL). Tensors that do not require grad are made leaves
    that do. Gradients flow back to ``params`` (and to ``lr`` tensors) for the outer loop.
    ``retain_graph``: keep each step's graph even when first order, for starting values computed
    from other ``params`` (the full-network head starts from the encoder's own prototypes).
    """
    fast = {k: v if v.requires_grad else v.detach().requires_grad_() for k, v in params.items()}
    for _ in range(steps):
        with torch.enable_grad():
            loss = loss_fn(module, fast)
            grads = torch.autograd.grad(
                loss,
                list(fast.values()),
                create_graph=not first_order,
                retain_graph=retain_graph or not first_order,
            )
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
        self.dim, self.first_order, self.lr = dim, first_order, lr
        self.register_buffer("inner_steps", torch.tensor(steps))  # saved with the state
        self.head = ScaledLinearHead()
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.lr_weight = nn.Parameter(torch.full((1, dim), lr), requires_grad=learn_lr)
        self.lr_bias = nn.Parameter(torch.full((1,), lr), requires_grad=learn_lr)

    def describe(self) -> dict[str, Any]:
        return {"adapt": "head", "inner_steps": int(self.inner_steps), "inner_lr": self.lr}

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


class FullNetworkLearner(nn.Module):
    """MAML over the whole encoder on images (see the module docstring); ``adapts_encoder``:
    ``forward(encoder, support_x (S, C, H, W), support_y (S,), query_x (Q, C, H, W), n_way)``."""

    adapts_encoder = True

    def __init__(self, steps: int, lr: float, first_order: bool) -> None:
        super().__init__()
        self.steps, self.lr, self.first_order = steps, lr, first_order

    def describe(self) -> dict[str, Any]:
        return {"adapt": "full", "inner_steps": self.steps, "inner_lr": self.lr}

    def forward(
        self,
        encoder: nn.Module,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        n_way: int,
    ) -> torch.Tensor:
        """Query logits (Q, n_way) after the inner loop on the support images."""
        params = {n: p for n, p in encoder.named_parameters() if p.requires_grad}
        params = params or dict(encoder.named_parameters())  # frozen (evaluation): adapt copies

        def encoder_part(fast: Params) -> Params:
            return {k[8:]: v for k, v in fast.items() if k.startswith("encoder.")}

        def loss_fn(_: nn.Module, fast: Params) -> torch.Tensor:
            z = functional_call(encoder, encoder_part(fast), (support_x,)).float()
            return F.cross_entropy(z @ fast["head.weight"].T + fast["head.bias"], support_y)

        with torch.enable_grad():  # inner loops need gradients, in evaluation too
            protos = class_means(encoder(support_x).float(), support_y, n_way)
            start = {f"encoder.{k}": v for k, v in params.items()}
            start.update({"head.weight": 2 * protos, "head.bias": -protos.pow(2).sum(1)})
            fast = inner_adapt(
                encoder, start, loss_fn, self.steps, self.lr, self.first_order, retain_graph=True
            )
            query = functional_call(encoder, encoder_part(fast), (query_x,)).float()
            return query @ fast["head.weight"].T + fast["head.bias"]


class _HeadAdapter(Adapter):
    """Shared adapter: fit = adapt the head on the support set; predict = one matrix product."""

    family = "optimization"
    first_order = False
    learn_lr = False
    default_steps, default_lr = 10, 0.5

    @classmethod
    def learner(
        cls,
        dim: int,
        *,
        steps: int = 5,
        lr: float | None = None,
        adapt: str | None = None,
        pretrained: bool = False,
    ) -> nn.Module:
        """The head learner (inner rate 0.1 by default); for ``full_network`` methods on a
        backbone trained from scratch, by default the full-network learner (inner rate 0.4)."""
        adapt = adapt or ("full" if cls.full_network and not pretrained else "head")
        if adapt not in ("full", "head"):
            raise UsageError(f"adapt is 'full' or 'head', not {adapt!r}")
        if adapt == "full" and not cls.full_network:
            raise UsageError(f"'{cls.name}' adapts the head only: --adapt full is for maml/fomaml")
        if steps < 1:
            raise UsageError("--inner-steps must be at least 1")
        if adapt == "full":
            return FullNetworkLearner(steps, 0.4 if lr is None else lr, cls.first_order)
        lr = 0.1 if lr is None else lr
        return HeadLearner(dim, steps, lr, cls.first_order, cls.learn_lr)

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
        self.module: Any = None  # HeadLearner, or any learner with adapt() and log_scale
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
        if self.module is None or self.module.dim != self.dim:
            self.module = self._make_learner()
        fast = self.module.adapt(self._x, self.targets, len(self._classes))
        self._fast = {k: v.detach() for k, v in fast.items()}

    def feature_kind(self) -> str:
        return "inverse-norm"

    def _logits(self, queries: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """The adapted head on unit queries: ``scale * (q / |q| @ W.T + b)``."""
        assert self.module is not None and features is not None
        w, b = self._fast["weight"], self._fast["bias"]
        return self.module.log_scale.exp() * ((queries @ w.T) * features + b)

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        assert self.module is not None
        out.update(learner=self.module.state_dict(), fast=dict(self._fast))
        return out

    def load_state(self, state: dict[str, Any]) -> Adapter:
        super().load_state(state)
        self._state = state["learner"]
        self.module = self._make_learner()
        self._fast = dict(state["fast"])
        return self


class MAMLAdapter(_HeadAdapter):
    """Second-order MAML (the head is adapted on cached embeddings at labeling time)."""

    name = "maml"
    help = "gradient adaptation (MAML)"
    order = 30
    full_network = True


class FOMAMLAdapter(_HeadAdapter):
    """First-order MAML."""

    name = "fomaml"
    help = "first-order MAML"
    order = 31
    first_order = True
    full_network = True


class ANILAdapter(_HeadAdapter):
    """ANIL: inner loop on the head only — the fast choice for live labeling."""

    name = "anil"
    help = "gradient adaptation of the head only (ANIL)"
    order = 32
    auto = "default"  # the MAML family's fast stand-in
    default_steps = 5


class MetaSGDAdapter(_HeadAdapter):
    """Meta-SGD: learned per-parameter inner rates (from ``state``; ``lr`` when untrained)."""

    name = "metasgd"
    help = "Meta-SGD: learned step sizes"
    order = 33
    learn_lr = True
    default_steps = 1
