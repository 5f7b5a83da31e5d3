"""Metric family: class prototypes, a leave-one-out temperature and an optional triplet fine-tune.

Each class is represented by its *prototype*, the mean of its support embeddings (Snell et al. 2017).
A query's logits are ``scale * similarity`` to every prototype, with similarity either the cosine
(``distance="cosine"``, embeddings L2-normalised first) or the negative squared Euclidean distance
(``distance="euclidean"``). Softmax over raw distances is badly calibrated, so ``scale`` (the
inverse temperature) is fitted on the support set by leave-one-out: each support example is
classified against prototypes computed without it, and the scale with the lowest class-balanced
negative log-likelihood on a log-spaced grid is kept. Examples of 1-shot classes cannot be left
out and are skipped; with no class of two or more examples the default scale is used (the
meta-learned one from ``state["log_scale"]`` when a checkpoint gives it).

``center=a`` (cosine only, 0 by default) subtracts ``a`` times the support set's class-balanced mean
direction (the mean of the class means of the unit embeddings) before the cosine, for support and
queries alike (CL2N, Wang et al. 2019 "SimpleShot"). Without it, a class with more examples gets a
prototype nearer the direction every embedding shares, so it scores higher for *every* image and
takes images of classes with fewer examples; in the review loop (issue 13: 10-way 1-shot, least
confident first) one accepted example moved 5 % of a Flowers folder to the wrong class.

``triplet=True`` first fine-tunes a residual low-rank projection ``f(x) = x + (x @ A) @ B.T``
(``A`` (D, r) starts at zero, so ``f`` starts as the identity; ``B`` (D, r) is a fixed-seed random
start) on the support set with the batch-hard triplet loss
``max(0, d(a, p) - d(a, n) + margin)`` (Hermans et al. 2017), for anchors that have a positive and a
negative; it is skipped when no class has two examples. Low rank keeps prediction one matrix
product: ``queries @ [prototypes | A | B]`` gives every dot product and norm needed (see
:func:`projected_dots`).

Meta-training (:meth:`MetricAdapter.learner`) trains :class:`PrototypeLearner`, the same
prototypes and similarity with a learnable log-scale, with ``distance`` (default: the squared
Euclidean distance of ProtoNet, Snell et al. 2017; measured: 80.0 % vs 71.4 % for the cosine after
300 Omniglot episodes, same seed); after each validation it fits the temperature of the distance
labeling will use, ``label_distance`` (default: the cosine, which labeling's centring, folder
refinement and unknown score build on), on the validation episodes (:meth:`PrototypeLearner.calibrate`).
Its checkpoint state is ``{"log_scale": tensor (), "distance": str}``, the labeling distance and its
temperature: the metric adapter follows the recorded distance and takes that scale as its default.
A state without ``"distance"`` comes from before it was recorded: those checkpoints were trained the
same way and their ``log_scale`` fitted for the cosine afterwards (their metadata's
``metric_scale``), so they label with the cosine.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from fewshot_gui.adapters.base import Adapter, balanced_weights, class_means, l2_normalize
from fewshot_gui.core.errors import UsageError

DEFAULT_COSINE_SCALE = 10.0
DEFAULT_EUCLIDEAN_SCALE = 5.0  # in units of the support set's mean squared spread
SCALE_GRID = 2.0 ** (torch.arange(-24, 25, dtype=torch.float64) / 4)  # default / 64 … default * 64
PRIOR_SIGMA = 0.5  # of log(scale / default)
DISTANCES = ("cosine", "euclidean")
LEGACY_DISTANCE = "cosine"  # of a checkpoint state that records none (see the module docstring)


def similarity(queries: torch.Tensor, protos: torch.Tensor, distance: str) -> torch.Tensor:
    """(Q, D) × (C, D) → (Q, C): cosine, or negative squared Euclidean distance."""
    if distance == "cosine":
        return l2_normalize(queries) @ l2_normalize(protos).T
    sq = (queries * queries).sum(1, keepdim=True) - 2 * queries @ protos.T
    return -(sq + (protos * protos).sum(1)[None]).clamp_min(0)


def projected_dots(
    q: torch.Tensor, protos: torch.Tensor, proj: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``z = q + (q @ A) @ B.T``: ``z @ protos.T`` (Q, C) and ``|z|²`` (Q,), in one product."""
    if proj is None:
        return q @ protos.T, torch.linalg.vector_norm(q, dim=1).square()
    a, b = proj
    c, r = len(protos), a.shape[1]
    out = q @ torch.cat([protos.T, a, b], 1)
    dots, qa, qb = out[:, :c], out[:, c : c + r], out[:, c + r :]
    dots = dots + qa @ (b.T @ protos.T)
    sq = torch.linalg.vector_norm(q, dim=1).square() + 2 * (qa * qb).sum(1)
    return dots, sq + ((qa @ (b.T @ b)) * qa).sum(1)


def paired_similarity(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """Row-wise similarity of ``a`` (n, D) and ``b`` (n, D) → (n,)."""
    if distance == "cosine":
        return (l2_normalize(a) * l2_normalize(b)).sum(1)
    return -(a - b).pow(2).sum(1)


def triplet_loss(z: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor | None:
    """Batch-hard triplet loss on features ``z`` (S, D) with labels ``y`` (S,); None if no triplet."""
    d = torch.cdist(z, z).pow(2)
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool)
    pos_mask, neg_mask = same & ~eye, ~same
    valid = pos_mask.any(1) & neg_mask.any(1)
    if not valid.any():
        return None
    hardest_pos = d.masked_fill(~pos_mask, float("-inf")).amax(1)
    hardest_neg = d.masked_fill(~neg_mask, float("inf")).amin(1)
    return torch.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def loo_similarity(
    z: torch.Tensor, y: torch.Tensor, n_way: int, distance: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarities (n, C) of support examples to prototypes built without them, and their labels.

    Only examples whose class has at least two examples are returned.
    """
    counts = torch.bincount(y, minlength=n_way)
    keep = counts[y] >= 2
    protos = class_means(z, y, n_way)
    sims = similarity(z[keep], protos, distance)
    yk, zk = y[keep], z[keep]
    n = counts[yk].to(z.dtype)[:, None]
    own = (protos[yk] * n - zk) / (n - 1)
    sims[torch.arange(len(yk)), yk] = paired_similarity(zk, own, distance)
    return sims, yk


def fit_scale(sims: torch.Tensor, y: torch.Tensor, n_way: int, default: float) -> float:
    """The scale on a log grid around ``default`` minimising class-balanced NLL of ``sims``.

    A log-normal prior (σ = ``PRIOR_SIGMA``) around ``default`` keeps a few separable examples from
    pushing the scale to the end of the grid; with many examples the data dominates.
    """
    scales = default * SCALE_GRID
    logits = scales[:, None, None] * sims.double()[None]
    nll = -torch.log_softmax(logits, 2)[:, torch.arange(len(y)), y]
    w = balanced_weights(y, n_way).double()
    prior = SCALE_GRID.log().square() / (2 * PRIOR_SIGMA**2)
    return float(scales[((nll * w).sum(1) + prior).argmin()])


class MetricAdapter(Adapter):
    """Prototype classifier with a leave-one-out temperature (see the module docstring)."""

    name = "metric"
    family = "metric"
    help = "prototypes: nearest class mean (fast)"
    order = 10
    auto = "default"

    @classmethod
    def learner(
        cls, dim: int, *, distance: str = "euclidean", label_distance: str = "cosine"
    ) -> PrototypeLearner:
        """ProtoNet with a learnable scale, trained with ``distance``; the temperature of
        ``label_distance`` is fitted on the validation episodes and recorded for labeling."""
        _check_distance(distance)
        _check_distance(label_distance)
        return PrototypeLearner(distance, label_distance)

    def __init__(
        self,
        *,
        state: dict[str, Any] | None = None,
        distance: str | None = None,
        temperature: float | None = None,
        calibrate: bool = True,
        triplet: bool = False,
        margin: float = 0.2,
        triplet_steps: int = 50,
        triplet_lr: float = 1e-2,
        rank: int = 16,
        center: float = 0.0,
        **options: Any,
    ) -> None:
        super().__init__(state=state, **options)
        self.state_distance = str((self._state or {}).get("distance", LEGACY_DISTANCE))
        distance = distance or self.state_distance  # the checkpoint's, unless asked otherwise
        _check_distance(distance)
        if temperature is not None and temperature <= 0:
            raise UsageError("The temperature must be positive.")
        if center and distance != "cosine":
            raise UsageError("center applies to the cosine distance only.")
        self.distance = distance
        self.center = float(center)
        self._center = torch.zeros(0)  # (D,) subtracted from unit embeddings; empty: none
        self.fixed_temperature = temperature
        self.calibrate = calibrate
        self.triplet, self.margin = triplet, margin
        self.triplet_steps, self.triplet_lr = triplet_steps, triplet_lr
        self.rank = rank
        self.proj: tuple[torch.Tensor, torch.Tensor] | None = None  # (A, B) after triplet fine-tune
        self.triplet_losses: list[float] = []  # per fine-tune step, for inspection
        self.scale = DEFAULT_COSINE_SCALE
        self._protos = torch.empty(0, 0)

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale

    def _features(self, x: torch.Tensor, center: torch.Tensor | None = None) -> torch.Tensor:
        """Features (N, D) of embeddings ``x`` (N, D); ``center`` (D,): instead of the fitted one."""
        z = l2_normalize(x) if self.distance == "cosine" else x
        center = self._center if center is None else center
        if len(center):
            z = l2_normalize(z - center)
        if self.proj is not None:
            a, b = self.proj
            z = z + (z @ a) @ b.T
            z = l2_normalize(z) if self.distance == "cosine" else z
        return z

    def _default_scale(self, z: torch.Tensor) -> float:
        """The meta-learned scale when the state has one for this distance, else a default."""
        if self._state and "log_scale" in self._state and self.state_distance == self.distance:
            return float(self._state["log_scale"].exp())
        if self.distance == "cosine":
            return DEFAULT_COSINE_SCALE
        spread = float((z - z.mean(0)).pow(2).sum(1).mean())
        return DEFAULT_EUCLIDEAN_SCALE / spread if spread > 0 else DEFAULT_EUCLIDEAN_SCALE

    def center_of(self, x: torch.Tensor, y: torch.Tensor, n_way: int) -> torch.Tensor:
        """The centre (D,) subtracted for support ``x`` (S, D), ``y`` (S,); empty: none."""
        if not self.center:
            return torch.zeros(0)
        return self.center * class_means(l2_normalize(x), y, n_way).mean(0)

    def _refit(self) -> None:
        y, n_way = self.targets, len(self._classes)
        self.proj = None
        self._center = self.center_of(self._x, y, n_way)
        if self.triplet:
            self._fine_tune(y)
        z = self._features(self._x)
        self._protos = class_means(z, y, n_way, self.example_weights)  # review labels weigh less
        self.scale = self._default_scale(z)
        if self.fixed_temperature is not None:
            self.scale = 1.0 / self.fixed_temperature
        elif self.calibrate and n_way >= 2:
            sims, yk = loo_similarity(z, y, n_way, self.distance)
            if len(yk):
                self.scale = fit_scale(sims, yk, n_way, self.scale)

    def _fine_tune(self, y: torch.Tensor) -> None:
        """Train the residual projection (A, B) on the support set with the triplet loss."""
        self.triplet_losses = []
        x = self._features(self._x)  # unit (and centred) embeddings, or raw for euclidean
        margin = self.margin
        if self.distance == "euclidean":
            margin *= float((x - x.mean(0)).pow(2).sum(1).mean()) or 1.0
        gen = torch.Generator().manual_seed(0)
        a = torch.zeros(x.shape[1], self.rank, requires_grad=True)
        b = (
            torch.randn(x.shape[1], self.rank, generator=gen)
            .div(x.shape[1] ** 0.5)
            .requires_grad_()
        )
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in (a, b)]
        with torch.enable_grad():
            for step in range(1, self.triplet_steps + 1):
                z = x + (x @ a) @ b.T
                z = l2_normalize(z) if self.distance == "cosine" else z
                loss = triplet_loss(z, y, margin)
                if loss is None:
                    return
                self.triplet_losses.append(loss.item())
                if loss.item() == 0.0:
                    break
                grads = torch.autograd.grad(loss, (a, b))
                with torch.no_grad():
                    for p, g, (m, v) in zip((a, b), grads, moments, strict=True):
                        _adam_update(p, g, m, v, step, self.triplet_lr)
        self.proj = (a.detach(), b.detach())

    def feature_kind(self) -> str | None:
        if self.proj is not None:  # the projection is fitted on the support set
            return None
        return "inverse-norm" if self.distance == "cosine" else "squared-norm"

    def _logits(self, queries: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        protos = l2_normalize(self._protos) if self.distance == "cosine" else self._protos
        if len(self._center):  # unit q, centre c: (q - c)·p / |q - c|, one product with [p | c]
            if features is None:
                return self.scale * (self._features(queries) @ protos.T)
            out = queries @ torch.cat([protos, self._center[None]]).T
            c = self._center
            dots = out[:, :-1] * features - (protos @ c)[None]
            sq = (1 - 2 * out[:, -1:] * features + c @ c).clamp_min(1e-12)
            return self.scale * dots * sq.rsqrt()
        if features is None:
            dots, sq = projected_dots(queries, protos, self.proj)
            sq = sq[:, None]
        else:  # no projection: one matrix product, the norms are the features
            dots, sq = queries @ protos.T, features
        if self.distance == "cosine":
            inverse_norm = features if features is not None else sq.sqrt().clamp_min(1e-12).pow(-1)
            return dots * (self.scale * inverse_norm)
        return -self.scale * (sq - 2 * dots + protos.pow(2).sum(1)[None]).clamp_min(0)

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out.update(
            scale=self.scale, proj=self.proj, protos=self._protos.clone(), center=self._center
        )
        return out

    def load_state(self, state: dict[str, Any]) -> MetricAdapter:
        super().load_state(state)
        self.scale, self.proj, self._protos = state["scale"], state["proj"], state["protos"]
        self._center = state.get("center", torch.zeros(0))
        return self


def _adam_update(
    p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, step: int, lr: float
) -> None:
    """One in-place Adam step (β = 0.9, 0.999); avoids torch.optim's slow first import."""
    m.mul_(0.9).add_(g, alpha=0.1)
    v.mul_(0.999).addcmul_(g, g, value=0.001)
    m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
    p.sub_(lr * m_hat / (v_hat.sqrt() + 1e-8))


def _check_distance(distance: str) -> None:
    if distance not in DISTANCES:
        raise UsageError(f"Unknown distance '{distance}': use 'cosine' or 'euclidean'.")


class PrototypeLearner(nn.Module):
    """Differentiable prototype classifier for meta-training, with a learnable log-scale.

    Trained with ``distance``; :meth:`calibrate` fits the scale of ``label_distance`` on the
    validation episodes, and :meth:`adapter_state` records that distance and scale for
    :class:`MetricAdapter` (the trained scale when nothing was fitted and the distances agree).
    """

    def __init__(
        self,
        distance: str = "euclidean",
        label_distance: str | None = None,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        self.distance = distance
        self.label_distance = label_distance or distance
        if scale is None:
            scale = DEFAULT_COSINE_SCALE if distance == "cosine" else 1.0
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.register_buffer("label_log_scale", torch.tensor(float("nan")))  # fitted: finite

    def prototypes(
        self, support: torch.Tensor, support_y: torch.Tensor, n_way: int, distance: str
    ) -> torch.Tensor:
        """Class means (n_way, D) of ``support`` (S, D), of unit embeddings for the cosine."""
        return class_means(
            l2_normalize(support) if distance == "cosine" else support, support_y, n_way
        )

    def forward(
        self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, n_way: int
    ) -> torch.Tensor:
        """``support`` (S, D), ``support_y`` (S,) long, ``query`` (Q, D) → logits (Q, n_way)."""
        protos = self.prototypes(support, support_y, n_way, self.distance)
        return self.log_scale.exp() * similarity(query, protos, self.distance)

    @torch.no_grad()
    def calibrate(self, episodes: list[tuple[torch.Tensor, ...]]) -> dict[str, Any]:
        """Fit the ``label_distance`` scale on validation ``episodes`` of embeddings
        ``(support (S, D), support_y (S,), query (Q, D), query_y (Q,))``, all of one way: the
        scale with the lowest class-balanced NLL of the queries (:func:`fit_scale`)."""
        sims, targets = [], []
        n_way = int(episodes[0][1].max()) + 1
        for support, support_y, query, query_y in episodes:
            protos = self.prototypes(support.float(), support_y, n_way, self.label_distance)
            sims.append(similarity(query.float(), protos, self.label_distance).double().cpu())
            targets.append(query_y.cpu())
        trained = float(self.log_scale.exp())
        if self.label_distance == self.distance:
            start = trained
        else:
            start = DEFAULT_COSINE_SCALE if self.label_distance == "cosine" else 1.0
        scale = fit_scale(torch.cat(sims), torch.cat(targets), n_way, start)
        self.label_log_scale.fill_(math.log(scale))
        return {
            "distance": self.label_distance,
            "scale": scale,
            "trained_distance": self.distance,
            "trained_scale": trained,
            "queries": int(sum(len(t) for t in targets)),
        }

    def describe(self) -> dict[str, Any]:
        return {"distance": self.distance, "label_distance": self.label_distance}

    def adapter_state(self) -> dict[str, Any]:
        """``{"distance": label distance, "log_scale": its scale}`` (no scale when none is known)."""
        state: dict[str, Any] = {"distance": self.label_distance}
        if torch.isfinite(self.label_log_scale):
            state["log_scale"] = self.label_log_scale.detach().float().cpu()
        elif self.label_distance == self.distance:
            state["log_scale"] = self.log_scale.detach().float().cpu()
        return state
