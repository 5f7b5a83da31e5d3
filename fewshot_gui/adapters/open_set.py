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
(:func:`cosine_to_prototypes`; the inverse norms are the session's cached query features).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

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
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def prototypes(support: np.ndarray, y: np.ndarray, n_way: int) -> np.ndarray:
    """Unit class prototypes ``(C, D)``: renormalised means of the unit ``support`` (S, D)."""
    z = unit(support)
    sums = np.zeros((n_way, z.shape[1]), np.float64)
    np.add.at(sums, np.asarray(y, np.int64), z)
    return unit(sums)


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
        sums = np.zeros((n_way, z.shape[1]))
        np.add.at(sums, y, z)
        # a: mean cosine of two examples of one class (pairs within classes of >= 2 examples)
        pair_sum = ((sums * sums).sum(1) - counts) / 2  # sum over pairs i<j of z_i·z_j
        pairs = counts * (counts - 1) / 2
        n_pairs = float(pairs.sum())
        a = (PRIOR_WEIGHT * prior.a + 2 * float(pair_sum.sum())) / (PRIOR_WEIGHT + 2 * n_pairs)
        mu = np.asarray(prior.mu(counts), np.float64).reshape(n_way)
        residuals: list[np.ndarray] = []
        for c in np.flatnonzero(counts >= 2):
            own = z[y == c]
            n = counts[c]
            rest = sums[c][None] - own  # (n, D) sum of the other examples
            loo = (own * rest).sum(1) / np.maximum(np.linalg.norm(rest, axis=1), 1e-12)
            loo = loo * float(expected_similarity(a, n) / expected_similarity(a, n - 1))
            weight = PRIOR_WEIGHT
            mu[c] = (weight * mu[c] + loo.sum()) / (weight + n)
            residuals.append(loo - loo.mean())
        r = np.concatenate(residuals) if residuals else np.zeros(0)
        dof = sum(len(x) - 1 for x in residuals)
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
        mu = self.mu.astype(np.float64).copy()
        spreads: list[float] = []
        for c in range(len(mu)):
            own = best[nearest == c]
            if len(own) >= MIN_FOLDER_IMAGES:
                upper, top = np.quantile(own, [FOLDER_QUANTILE, 0.9])
                mu[c] = min(mu[c], float(upper))
                spreads.append(float(top - upper) / _UPPER_SD)
        sigma = max(self.sigma, float(np.median(spreads))) if spreads else self.sigma
        return UnknownScorer(self.protos, mu.astype(np.float32), sigma, self.spread)

    def scores(self, sims: np.ndarray) -> np.ndarray:
        """Unknown scores ``(N,)`` in [0, 1] from cosines ``sims`` (N, C) to :attr:`protos`."""
        if sims.shape[1] == 0:
            return np.ones(len(sims), np.float32)
        z = ((self.mu[None] - sims) / self.sigma).min(axis=1) / self.spread
        return normal_cdf(z).astype(np.float32)


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Φ(z), elementwise."""
    z = np.asarray(z, np.float64)
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.erf(torch.from_numpy(np.asarray(x, np.float64))).numpy()


def cosine_to_prototypes(
    x: np.ndarray, inverse_norms: np.ndarray | None, protos: np.ndarray
) -> np.ndarray:
    """Cosines ``(N, C)`` of embeddings ``x`` (N, D) to unit ``protos`` (C, D): one product (any
    other row of ``protos`` gives its dot product with the unit ``x``).

    ``inverse_norms`` (N, 1): ``1 / |x|`` when known (the session caches them), else computed.
    The product is numpy's (BLAS): for these skinny shapes it took 15 ms where torch's one-thread
    product took 25 (9,907 × 1280 by 21 prototypes, this project's 2-core CPU, same run), and it
    is the bulk of a re-label.
    """
    q = np.asarray(x, np.float32)
    dots = q @ np.ascontiguousarray(protos, np.float32).T
    if inverse_norms is None:
        inv = 1.0 / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    else:
        inv = np.asarray(inverse_norms, np.float32).reshape(-1, 1)
    return (dots * inv).astype(np.float32, copy=False)


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
