"""Held-out evidence for ``auto``: folds over the support set, held-out scores of the
closed-form candidates (metric, memory) on all folds at once, and the paired test that decides
whether a challenger is clearly better (see :mod:`~fewshot_gui.adapters.auto`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fewshot_gui.adapters.base import l2_normalize
from fewshot_gui.adapters.memory import DEFAULT_TEMPERATURE_SCALE, MemoryAdapter
from fewshot_gui.adapters.metric import MetricAdapter, fit_scale, loo_similarity, similarity
from fewshot_gui.adapters.registry import adapter_class

KFOLD = 5
KFOLD_MIN_SHOT = 5
MAX_FOLDS = 10
Z = 2.5
"""Paired-test margin in standard deviations (one-sided, ≈ 0.6 % false switches per comparison)."""
MIN_GAIN = 0.05
"""… and the challenger must be right on this fraction of the held-out examples more …"""
MIN_GAIN_EXAMPLES = 3
"""… and on at least this many more."""
FIT_OVERHEAD_S = 0.005


def make_folds(y: torch.Tensor, n_way: int, max_folds: int = MAX_FOLDS) -> tuple[torch.Tensor, str]:
    """Fold index per support example (S,) long, ``-1`` = never held out, and the scheme's name.

    ``y`` (S,) holds class indices ``0..n_way-1``; every class is assumed present. The name is
    ``"LOO"`` when each fold holds out one example, else ``"<k>-fold"``.
    """
    counts = torch.bincount(y, minlength=n_way)
    evaluable = int((counts[y] >= 2).sum())
    fold = torch.full_like(y, -1)
    if evaluable == 0:
        return fold, "none"
    k = min(KFOLD, max_folds) if int(counts.min()) >= KFOLD_MIN_SHOT else min(evaluable, max_folds)
    k = max(k, 2) if evaluable >= 2 else 1
    dealt = 0
    for c in range(n_way):
        members = (y == c).nonzero().flatten()
        if len(members) < 2:
            continue
        fold[members] = (torch.arange(len(members)) + dealt) % k
        dealt += len(members)
    return fold, "LOO" if k == evaluable else f"{k}-fold"


@torch.no_grad()
def metric_scores(
    adapter: MetricAdapter, y: torch.Tensor, fold: torch.Tensor, n_way: int
) -> torch.Tensor:
    """Held-out log-probabilities (n, C) of a fitted metric adapter, all folds at once.

    Prototypes without fold ``k``: ``(sum_c - sum_kc) / (n_c - n_kc)``; the scale is refitted on
    the fold's training part (:func:`fold_scale`); a centring adapter's centre too.
    """
    x = adapter._x
    z = adapter._features(x)
    test = (fold >= 0).nonzero().flatten()
    sums = torch.zeros(n_way, z.shape[1]).index_add(0, y, z)
    counts = torch.bincount(y, minlength=n_way).float()
    out = torch.empty(len(test), n_way)
    for k in range(int(fold.max()) + 1):
        rows = (fold[test] == k).nonzero().flatten()
        held = test[rows]
        if adapter.center:  # the centre depends on the fold's training part
            train = fold != k
            z = adapter._features(x, adapter.center_of(x[train], y[train], n_way))
            sums = torch.zeros(n_way, z.shape[1]).index_add(0, y, z)
        fold_sums = torch.zeros_like(sums).index_add(0, y[held], z[held])
        fold_counts = torch.bincount(y[held], minlength=n_way).float()
        protos = (sums - fold_sums) / (counts - fold_counts).clamp_min(1)[:, None]
        out[rows] = fold_scale(adapter, z, y, fold != k, n_way) * similarity(
            z[held], protos, adapter.distance
        )
    return torch.log_softmax(out, 1)


def fold_scale(
    adapter: MetricAdapter, z: torch.Tensor, y: torch.Tensor, train: torch.Tensor, n_way: int
) -> float:
    """The scale the metric adapter would fit on the training part ``train`` (S,) bool of a fold,
    so that held-out log-likelihoods are honest (the accuracy does not depend on it)."""
    if adapter.fixed_temperature is not None or not adapter.calibrate:
        return adapter.scale
    default = adapter._default_scale(z[train])
    sims, yk = loo_similarity(z[train], y[train], n_way, adapter.distance)
    return fit_scale(sims, yk, n_way, default) if len(yk) else default


@torch.no_grad()
def memory_scores(
    adapter: MemoryAdapter, x: torch.Tensor, y: torch.Tensor, fold: torch.Tensor, n_way: int
) -> torch.Tensor:
    """Held-out log-probabilities (n, C) of a memory adapter (fitted or not) on support ``x``
    (S, D): each held-out example's attention over the support set, its own fold's slots masked."""
    test = (fold >= 0).nonzero().flatten()
    module = adapter.module
    if module is None:  # untrained: identity projections (see MemoryReadWrite)
        keys, q, scale = l2_normalize(x), x[test], DEFAULT_TEMPERATURE_SCALE
    else:
        keys, q, scale = module.keys(x), module.query_proj(x[test]), float(module.log_scale.exp())
    norm = torch.linalg.vector_norm(q, dim=1, keepdim=True).clamp_min(1e-12)
    logits = (q @ keys.T) * (scale / norm)
    logits = logits.masked_fill(fold[test][:, None] == fold[None, :], float("-inf"))
    evidence = torch.softmax(logits, 1) @ F.one_hot(y, n_way).to(logits.dtype)
    return evidence.clamp_min(1e-12).log()


def refit_cost_s(method: str, n_way: int, dim: int) -> float:
    """Rough seconds for one fit of a refitted candidate (one thread, this project's 2-core CI)."""
    return FIT_OVERHEAD_S + n_way * dim * adapter_class(method).refit_cost_s


def clearly_better(challenger: torch.Tensor, incumbent: torch.Tensor) -> bool:
    """Whether a method right on the held-out examples ``challenger`` (n,) bool is clearly better
    than one right on ``incumbent`` (n,) bool, the same examples (paired, McNemar-style)."""
    b = int((challenger & ~incumbent).sum())
    c = int((~challenger & incumbent).sum())
    margin = max(MIN_GAIN_EXAMPLES, MIN_GAIN * len(challenger), Z * math.sqrt(b + c))
    return b - c >= margin
