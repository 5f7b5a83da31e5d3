"""Meta-LSTM (Ravi & Larochelle 2017): a learned optimizer that updates the classifier head.

The head is the same as the optimization family's (:mod:`fewshot_gui.adapters.maml`): logits
``scale * (z @ W.T + b)`` on L2-normalised embeddings, started from the (normalised) prototypes.
Its parameters, flattened to ``θ`` (P,), are the *cell state* of an LSTM applied coordinate-wise
(the same small LSTM for every coordinate, a batch of P). At each step, for every coordinate:

* input: the preprocessed gradient and loss, each as ``(log(|x|) / p, sign(x))`` when
  ``|x| >= e^-p`` else ``(-1, e^p x)`` with ``p = 10`` (the paper's preprocessing), through a first
  LSTM layer (hidden size ``hidden``) giving ``h``;
* input gate ``i = σ(W_i [h, θ, i_prev] + b_i)`` — the learned learning rate;
* forget gate ``f = σ(W_f [h, θ, f_prev] + b_f)`` — the learned shrinkage;
* update ``θ ← f ⊙ θ - i ⊙ ∇θ``.

The gradient is an input (not differentiated through), as in the paper. Untrained, ``b_f`` is large
(``f ≈ 1``) and ``b_i`` gives ``i ≈ lr``, so it behaves like plain gradient descent.
:class:`MetaLSTMLearner` is the nn.Module meta-training trains:
``forward(support (S, D), support_y (S,), query (Q, D), n_way) -> logits (Q, n_way)``;
its ``state_dict()`` is the adapter ``state``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fewshot_gui.adapters.base import balanced_weights, l2_normalize
from fewshot_gui.adapters.maml import Params, _HeadAdapter, proto_init
from fewshot_gui.core.errors import UsageError

PREPROCESS_P = 10.0


def preprocess(x: torch.Tensor, p: float = PREPROCESS_P) -> torch.Tensor:
    """Ravi & Larochelle's gradient/loss preprocessing: (P,) → (P, 2)."""
    big = x.abs() >= math.exp(-p)
    magnitude = torch.where(big, x.abs().clamp_min(1e-30).log() / p, torch.full_like(x, -1.0))
    sign = torch.where(big, torch.sign(x), x * math.exp(p))
    return torch.stack([magnitude, sign], dim=1)


class MetaLSTMLearner(nn.Module):
    """Coordinate-wise LSTM meta-learner updating a linear head (see the module docstring)."""

    def __init__(
        self, dim: int, steps: int = 5, hidden: int = 20, lr: float = 0.5, scale: float = 5.0
    ) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("inner_steps", torch.tensor(steps))
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.lstm = nn.LSTMCell(4, hidden)
        self.input_gate = nn.Linear(hidden + 2, 1)
        self.forget_gate = nn.Linear(hidden + 2, 1)
        gen = torch.Generator().manual_seed(0)  # deterministic untrained behaviour
        with torch.no_grad():
            for p in self.lstm.parameters():
                p.uniform_(-(hidden**-0.5), hidden**-0.5, generator=gen)
            lr = min(max(lr, 1e-4), 1 - 1e-4)  # the input gate is a rate in (0, 1)
            for gate, bias in ((self.input_gate, math.log(lr / (1 - lr))), (self.forget_gate, 5.0)):
                gate.weight.uniform_(-0.01, 0.01, generator=gen)
                gate.bias.fill_(bias)

    def adapt(self, support: torch.Tensor, support_y: torch.Tensor, n_way: int) -> Params:
        """Fast head weights ``{"weight": (C, D), "bias": (C,)}`` written by the LSTM."""
        z = l2_normalize(support)
        scale, w = self.log_scale.exp(), balanced_weights(support_y, n_way)
        init = proto_init(z, support_y, n_way)
        theta = torch.cat([init["weight"].flatten(), init["bias"]])
        n = len(theta)
        state = (
            theta.new_zeros(n, self.lstm.hidden_size),
            theta.new_zeros(n, self.lstm.hidden_size),
        )
        i_prev, f_prev = theta.new_zeros(n, 1), theta.new_ones(n, 1)
        for _ in range(int(self.inner_steps)):
            with torch.enable_grad():
                leaf = theta if theta.requires_grad else theta.detach().requires_grad_()
                logits = scale * (z @ leaf[: n_way * self.dim].view(n_way, -1).T + leaf[-n_way:])
                loss = (F.cross_entropy(logits, support_y, reduction="none") * w).mean()
                grad = torch.autograd.grad(loss, leaf)[0].detach()
            x = torch.cat([preprocess(grad), preprocess(loss.detach().expand(n))], dim=1)
            h, c = self.lstm(x, state)
            state = (h, c)
            t = theta[:, None]
            i_prev = torch.sigmoid(self.input_gate(torch.cat([h, t, i_prev], 1)))
            f_prev = torch.sigmoid(self.forget_gate(torch.cat([h, t, f_prev], 1)))
            theta = f_prev[:, 0] * theta - i_prev[:, 0] * grad
        return {"weight": theta[: n_way * self.dim].view(n_way, -1), "bias": theta[-n_way:]}

    def forward(
        self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, n_way: int
    ) -> torch.Tensor:
        fast = self.adapt(support, support_y, n_way)
        q = l2_normalize(query)
        return self.log_scale.exp() * (q @ fast["weight"].T + fast["bias"])


class MetaLSTMAdapter(_HeadAdapter):
    """Head written by the meta-learned LSTM optimizer (``steps`` / ``lr`` override the state)."""

    name = "metalstm"
    help = "learned optimizer (Meta-LSTM)"
    order = 34
    auto = "learned"  # untrained it is plain gradient descent on anil's head at ~10x its cost
    refit_cost_s = 1.5e-5  # a 20-unit LSTM step per head coordinate
    default_steps = 5

    @classmethod
    def learner(
        cls, dim: int, *, steps: int = 5, lr: float | None = None, hidden: int = 20
    ) -> MetaLSTMLearner:
        """The LSTM optimizer; ``lr`` (default 0.5) sets its untrained input gate."""
        if steps < 1:
            raise UsageError("--inner-steps must be at least 1")
        return MetaLSTMLearner(dim, steps, hidden, cls.default_lr if lr is None else lr)

    def _make_learner(self) -> MetaLSTMLearner:  # type: ignore[override]
        steps = self.default_steps if self.steps is None else self.steps
        learner = MetaLSTMLearner(self.dim, steps, lr=self.lr or self.default_lr)
        if self._state:
            learner.load_state_dict(
                {k: v.to(learner.state_dict()[k].dtype) for k, v in self._state.items()}
            )
            if self.steps is not None:
                learner.inner_steps.fill_(self.steps)
        return learner
