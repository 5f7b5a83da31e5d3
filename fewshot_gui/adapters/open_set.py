"""Open-set "unknown" score: how unlike every class an image is, from cosine distances alone.

Every image's cosine similarity ``s_c`` to each class prototype (the renormalised mean of the
class's unit support embeddings) is compared with what an image *of* that class would score:
``z_c = (μ_c - s_c) / σ``, and the unknown score is ``Φ(min_c z_c / spread)`` in [0, 1] (Φ the
normal CDF). It reads as "the share of images of its nearest class that look more like the class
than this one": 0.95 means only about 5 % of a class's own images are this far from its examples.
Distances, not the softmax maximum: the softmax of a far image can be confident when one class is
merely less far than the others (SnaTCHer, CVPR 2021: the plain distance score is ~10 AUROC points
above max-softmax in few-shot open-set recognition).

Calibration, from the support set:

* ``μ_c``: leave-one-out similarities of class ``c``'s examples to the prototype of its other
  examples, corrected from ``n_c - 1`` to ``n_c`` examples with the shrinkage model
  ``E[s] = a / sqrt(a + (1 - a) / n)`` (``a``: the mean cosine of two images of one class, estimated
  from the support pairs), blended with the prior's ``μ(n_c)`` (weight :data:`PRIOR_WEIGHT`
  examples). A class with one example takes the prior's ``μ(1)``.
* ``σ``: the pooled spread of the leave-one-out similarities, shrunk to the prior's.
* The prior (``a``, ``σ`` and ``spread``) is fitted per encoder on data from its meta-training
  domain (:func:`fit_prior`; Flowers-102 *training* classes, never the held-out ones or another
  domain; see :data:`PRIORS`). ``spread`` rescales ``z`` so that on those tasks the 95th percentile
  of known images' ``z`` maps to 0.95: ``--unknown-threshold auto`` (:data:`AUTO_THRESHOLD`) then
  keeps about 95 % of images of known classes.

A labeling session then lets the folder relax it (:meth:`UnknownScorer.for_folder`): a class's
``μ_c`` is never above the upper quartile of the cosines of the folder images nearest to it, so
neither a domain unlike the prior's nor a class whose few examples happen to be alike turns
ordinary images into ``unknown`` (``benchmarks/open_set.py``, with and without
``--support-only``).

One matrix product over the cached unit-normalised embeddings gives every ``s_c``
(:func:`~fewshot_gui.adapters.relabel.cosine_to_prototypes`; the inverse norms are the
session's cached query features).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fewshot_gui.adapters.relabel import cosine_to_prototypes as cosine_to_prototypes
from fewshot_gui.adapters.relabel import row_reduce
from fewshot_gui.core.types import LIKELY_UNKNOWN

AUTO_THRESHOLD = LIKELY_UNKNOWN
"""``--unknown-threshold auto``: label ``unknown`` above this score (about 95 % of known kept)."""
DEFAULT_THRESHOLD = 0.999
"""Without ``--unknown-threshold``, only images *clearly* far from every class become ``unknown``:
measured (``benchmarks/open_set.py``, held-out Flowers, 5-way, relaxed to the folder) it costs
0.4 points of accuracy at 5 shots and none at 1 shot on a folder without clutter, and catches
72 % / 37 % (5 / 1 shot) of texture clutter that makes up half the folder (the score itself still
ranks it: AUROC 0.997 / 0.995, so sorting by it finds the rest); ``auto`` (0.95) costs 5 / 1 points
there and catches 93 / 85 %."""
MIN_FOLDER_IMAGES = 8
FOLDER_QUANTILE = 0.75
_UPPER_SD = 0.6071
"""Normal quantile gap between the 90th and 75th percentiles, in standard deviations."""
"""Folder images nearest to a class needed before they may relax its expected similarity."""
PRIOR_WEIGHT = 2.0
"""How many examples' worth of evidence the prior's ``μ`` and ``σ`` carry."""


@dataclass(frozen=True)
class Prior:
    """Same-class statistics of an encoder in its meta-training domain.

    ``a``: mean cosine of two images of one class; ``sigma``: spread (sd) of a known image's cosine
    to its class prototype; ``spread``: scale of ``z`` that maps the 95th percentile to 0.95.
    """

    a: float
    sigma: float
    spread: float = 1.0

    def mu(self, n: int | np.ndarray) -> np.ndarray:
        """Expected cosine of a known image to its class prototype of ``n`` examples."""
        return expected_similarity(self.a, n)


PRIORS: dict[str, Prior] = {
    # fitted by `python benchmarks/open_set.py --fit-prior` on the photos checkpoint's 12
    # validation classes of Flowers-102 (32 images each; never the held-out classes), 2026-12-03
    "photos": Prior(a=0.6124, sigma=0.0896, spread=1.059),
    "efficientnet-lite0": Prior(a=0.652, sigma=0.0959, spread=1.029),
}
DEFAULT_PRIOR = Prior(a=0.6, sigma=0.1, spread=1.05)
"""For encoders without a fitted prior (used only for classes with one example)."""


def prior_for(encoder: str | None) -> Prior:
    """The prior of a registered encoder name (a default for others)."""
    return PRIORS.get(str(encoder or ""), DEFAULT_PRIOR)


def expected_similarity(a: float, n: int | np.ndarray) -> np.ndarray:
    """``a / sqrt(a + (1 - a) / n)``: cosine of a known image to the mean of ``n`` unit examples
    of its class when two images of the class have cosine ``a`` on average."""
    n = np.maximum(np.asarray(n, np.float64), 1.0)
    a = float(np.clip(a, 1e-3, 1.0))
    return a / np.sqrt(a + (1.0 - a) / n)


def unit(x: np.ndarray) -> np.ndarray:
    """``(N, D)`` rows scaled to unit length (zero rows stay zero), float32."""
    x = np.asarray(x, np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # no (N, D) square: 20 % faster than norm()
    return x / np.maximum(norms, 1e-12)[:, None]


def prototypes(support: np.ndarray, y: np.ndarray, n_way: int) -> np.ndarray:
    """Unit class prototypes ``(C, D)``: renormalised means of the unit ``support`` (S, D)."""
    return unit(class_sums(unit(support).astype(np.float64), y, n_way))


def class_sums(z: np.ndarray, y: np.ndarray, n_way: int) -> np.ndarray:
    """Per-class sums ``(C, D)`` of the rows of ``z`` (S, D) under ids ``y`` (S,): one product
    with the one-hot labels (``np.add.at`` took ~1 ms for 44 examples of 1280-d)."""
    y = np.asarray(y, np.int64)
    one_hot = np.zeros((n_way, len(y)), z.dtype)
    one_hot[y, np.arange(len(y))] = 1
    return one_hot @ z


@dataclass(frozen=True)
class UnknownScorer:
    """Prototypes ``(C, D)`` (unit), expected known similarity ``mu`` (C,) and ``sigma``."""

    protos: np.ndarray
    mu: np.ndarray
    sigma: float
    spread: float

    @classmethod
    def fit(cls, support: np.ndarray, y: Sequence[int] | np.ndarray, prior: Prior) -> UnknownScorer:
        """Calibrate from the support set: ``support`` (S, D) embeddings, ``y`` (S,) class ids."""
        y = np.asarray(y, np.int64)
        n_way = int(y.max()) + 1 if len(y) else 0
        z = unit(support).astype(np.float64)
        counts = np.bincount(y, minlength=n_way)
        sums = class_sums(z, y, n_way)
        # a: mean cosine of two examples of one class (pairs within classes of >= 2 examples)
        pair_sum = ((sums * sums).sum(1) - counts) / 2  # sum over pairs i<j of z_i·z_j
        pairs = counts * (counts - 1) / 2
        n_pairs = float(pairs.sum())
        a = (PRIOR_WEIGHT * prior.a + 2 * float(pair_sum.sum())) / (PRIOR_WEIGHT + 2 * n_pairs)
        mu = np.asarray(prior.mu(counts), np.float64).reshape(n_way)
        # leave-one-out similarity of each example of a class of >= 2 to its other examples,
        # corrected from n - 1 to n examples; all classes at once
        several = counts >= 2
        own = np.flatnonzero(several[y])
        yc = y[own]
        rest = sums[yc] - z[own]  # (m, D) sum of the other examples of the class
        loo = (z[own] * rest).sum(1) / np.maximum(np.linalg.norm(rest, axis=1), 1e-12)
        ratio = expected_similarity(a, counts) / expected_similarity(a, np.maximum(counts - 1, 1))
        loo = loo * ratio[yc]
        loo_sum = np.bincount(yc, loo, minlength=n_way)
        mu[several] = (PRIOR_WEIGHT * mu[several] + loo_sum[several]) / (
            PRIOR_WEIGHT + counts[several]
        )
        r = loo - (loo_sum / np.maximum(counts, 1))[yc]  # residuals from each class's mean
        dof = int((counts[several] - 1).sum())
        var = (PRIOR_WEIGHT * prior.sigma**2 + float((r * r).sum())) / (PRIOR_WEIGHT + dof)
        return cls(unit(sums), mu.astype(np.float32), math.sqrt(var), prior.spread)

    def for_folder(self, sims: np.ndarray) -> UnknownScorer:
        """This scorer, no stricter than the folder's own images allow: ``sims`` (M, C) cosines of
        folder images (a sample) to :attr:`protos`.

        The prior comes from the encoder's training domain; on another domain (textures through
        the base features, say) images of one class are less alike, and a class with one example
        would call half the folder ``unknown`` (DTD 1-shot: 41-51 % of known images above 0.999).
        Each class's ``μ_c`` is lowered to the upper quartile of the cosines of the folder images
        nearest to it (at least :data:`MIN_FOLDER_IMAGES` of them): images of no class sit in the
        lower part, so they cannot drag it down while they are fewer than three in four of those
        images (a median would follow clutter as soon as it outnumbers a class); ``σ`` is raised to
        the spread of the upper tail of those cosines (75th to 90th percentile, where images of
        no class are rare). Never stricter: on the encoder's own domain the folder agrees with
        the prior and the scores barely move."""
        sims = np.asarray(sims, np.float64)
        if not len(sims) or sims.shape[1] != len(self.mu):
            return self
        nearest = sims.argmax(1)
        best = sims[np.arange(len(sims)), nearest]
        counts = np.bincount(nearest, minlength=len(self.mu))
        ranked = best[np.lexsort((best, nearest))]  # each class's cosines, ascending, in turn
        upper = _group_quantiles(ranked, counts, FOLDER_QUANTILE)
        top = _group_quantiles(ranked, counts, 0.9)
        enough = counts >= MIN_FOLDER_IMAGES
        mu = np.where(enough, np.minimum(self.mu.astype(np.float64), upper), self.mu)
        spreads = (top - upper)[enough] / _UPPER_SD
        sigma = max(self.sigma, float(np.median(spreads))) if len(spreads) else self.sigma
        return UnknownScorer(self.protos, mu.astype(np.float32), sigma, self.spread)

    def scores(self, sims: np.ndarray) -> np.ndarray:
        """Unknown scores ``(N,)`` in [0, 1] from cosines ``sims`` (N, C) to :attr:`protos`."""
        if sims.shape[1] == 0:
            return np.ones(len(sims), np.float32)
        # the smallest gap first, then one division per image: the same value (rounding is
        # monotonic); the minimum column by column (a short-axis reduction is slow)
        z = row_reduce(self.mu[None] - sims, np.minimum) / self.sigma / self.spread
        return normal_cdf(z).astype(np.float32)


def _group_quantiles(ranked: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile (numpy's default, linear) of each of the consecutive ascending groups
    of ``ranked`` with sizes ``counts`` (C,); NaN for an empty group."""
    if not len(ranked):
        return np.full(len(counts), np.nan)
    starts = np.cumsum(counts) - counts
    position = q * np.maximum(counts - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(counts - 1, 0))
    a = ranked[np.minimum(starts + low, len(ranked) - 1)]
    b = ranked[np.minimum(starts + high, len(ranked) - 1)]
    t, diff = position - low, b - a
    value = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)  # numpy's linear interpolation
    return np.where(counts > 0, value, np.nan)


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Φ(z), elementwise."""
    z = np.asarray(z, np.float64)
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.erf(torch.from_numpy(np.asarray(x, np.float64))).numpy()


def resolve_threshold(value: float | str | None) -> float | None:
    """``"auto"`` → :data:`AUTO_THRESHOLD`; None → :data:`DEFAULT_THRESHOLD`; ``"off"`` → None
    (never unknown); a number in [0, 1] as given."""
    if value is None:
        return DEFAULT_THRESHOLD
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "auto":
            return AUTO_THRESHOLD
        if word in ("off", "none"):
            return None
        value = float(value)
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"the unknown threshold is a score in [0, 1] or 'auto', not {value}")
    return float(value)


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Area under the ROC curve of ``unknown`` scored above ``known`` (ties count half)."""
    known, unknown = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    if not len(known) or not len(unknown):
        return float("nan")
    _, inverse, counts = np.unique(
        np.concatenate([known, unknown]), return_inverse=True, return_counts=True
    )
    mean_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based, ties share their mean rank
    rank_sum = mean_rank[inverse][len(known) :].sum()
    m = len(unknown)
    return float((rank_sum - m * (m + 1) / 2) / (len(known) * m))


def fit_prior(
    embeddings: np.ndarray,
    labels: np.ndarray,
    way: int = 5,
    shots: Sequence[int] = (1, 5),
    tasks: int = 200,
    seed: int = 0,
) -> Prior:
    """Fit a :class:`Prior` on labeled embeddings of an encoder's meta-training domain.

    ``a``: the mean over classes of the mean cosine between two of its images; ``sigma``: the
    pooled within-class sd of one image's cosine to another; ``spread``: over random ``way``-way
    tasks at each of ``shots`` (queries: the rest of each class), the 95th percentile of known
    queries' ``z`` divided by Φ⁻¹(0.95) = 1.645.
    """
    z = unit(embeddings).astype(np.float64)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    means, residuals = [], []
    for c in classes:
        own = z[labels == c]
        if len(own) < 2:
            continue
        gram = own @ own.T
        pairs = gram[np.triu_indices(len(own), 1)]
        means.append(pairs.mean())
        residuals.append(pairs - pairs.mean())
    a = float(np.mean(means))
    sigma = float(np.concatenate(residuals).std())
    draft = Prior(a, sigma, 1.0)
    rng = np.random.default_rng(seed)
    known_z = []
    for shot in shots:
        for _ in range(tasks):
            chosen = rng.choice(classes, size=min(way, len(classes)), replace=False)
            support, y, queries = [], [], []
            for k, c in enumerate(chosen):
                ids = rng.permutation(np.flatnonzero(labels == c))
                support.append(ids[:shot])
                y += [k] * len(ids[:shot])
                queries.append(ids[shot:])
            scorer = UnknownScorer.fit(z[np.concatenate(support)], np.asarray(y), draft)
            sims = unit(z[np.concatenate(queries)]) @ scorer.protos.T
            known_z.append(((scorer.mu[None] - sims) / scorer.sigma).min(1))
    spread = float(np.quantile(np.concatenate(known_z), 0.95) / 1.6448536)
    return Prior(round(a, 4), round(sigma, 4), round(max(spread, 0.1), 3))
