"""Learning from the folder: transductive refinement of the class prototypes.

With one example per class a prototype is one photo's noise; the folder holds many more images of
the same classes. Soft k-means over the folder's unit embeddings (Ren et al. 2018), with the
examples fixed, moves each prototype toward the images that clearly belong to it:

    repeat ``iterations`` times:
        r_ic   = softmax_c(scale * cos(x_i, p_c))                 responsibilities (M, C)
        w_ic   = r_ic * max_c r_ic * known_i                      confident and known images only
        p_c   ∝ mean(support_c) + f_c β_c Σ_i w_ic x_i / Σ_i w_ic   β_c = min(Σ_i w_ic, cap) / n_c
                                  f_c ≤ 1 the largest step with cos(p_c, mean(support_c)) ≥ trust

Robust by construction where published methods fail on real folders:

* **imbalance**: no class-balance constraint (PT-MAP's balanced Sinkhorn assignment, or TIM's
  marginal-entropy term, assume equal class sizes and collapse on imbalanced episodes — α-TIM,
  Veilleux et al. NeurIPS 2021); every image simply pulls the prototype it is near, and each
  class's unlabeled mass is capped at ``cap`` examples' worth, so a large class cannot drag its
  prototype away from its examples;
* **images of no class**: ``known_i = 1 - unknown score`` (:mod:`~.open_set`, relaxed to the
  folder) and the confidence factor keep clutter and in-between images from pulling any prototype;
* **a review that never swings**: each refined prototype stays within cosine :data:`TRUST` of its
  examples' prototype (the largest step toward the folder that does), so one new example cannot
  send another class's prototype into a different cluster; and an image labeled while reviewing
  weighs :data:`~fewshot_gui.adapters.base.REVIEWED_WEIGHT` of an example the user gave (see
  there).

Everything runs in a *centred* space: a mean direction is subtracted (and rows renormalised) for
support and images alike (CL2N), which removes the direction every photo shares: the folder's mean
unit embedding while some class has a single example, else the class-balanced mean of the
examples (:meth:`SupportState.center`). Prediction with the refined prototypes is one matrix
product over the cached embeddings (``x @ [refined | support prototypes | centre]``: the class
logits, the unknown score's cosines and the centring term at once), and the iterations run on a
fixed sample of at most :data:`SAMPLE` images, so a re-label costs about one pass over the
embeddings plus the refinement of the sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fewshot_gui.adapters.base import REVIEWED_WEIGHT, single_thread
from fewshot_gui.adapters.open_set import UnknownScorer, cosine_to_prototypes, prior_for, unit
from fewshot_gui.adapters.relabel import CosineCache, one_thread, row_reduce, softmax_rows

ITERATIONS = 4
CAP = 4.0
"""Most unlabeled mass (in examples) one class's prototype takes from the folder."""
TRUST = 0.75
"""Least cosine between a refined prototype and the prototype of its class's examples: the folder
pulls a prototype within its class's region, never across into another cluster. Without it, an
accepted example of one class could swing the soft k-means so that an *other* class's prototype
jumped to a different cluster (review loop, Flowers 10-way 1-shot seed 2: 'carnation' moved to
cosine 0.43 of where it was, and the folder lost 8.7 points in one action); with it and ``CAP`` 4
(was 8) the largest fall over 25 reviews on seeds 0-5 went from 8.7 / 7.5 to 2.5 / 3.1 points."""
SAMPLE = 512
"""Folder images the iterations run on (a fixed random sample of larger folders)."""
ENABLED_BY_DEFAULT = True
"""Whether ``label`` and the app refine (decided by measurement: see the issue 15 note)."""
DEFAULT_SCALE = 10.0
"""Cosine logit scale for the responsibilities and the probabilities."""


@dataclass
class RefinedPrototypes:
    """Refined unit prototypes ``(C, D)`` in the centred space with ``center`` (D,) and the
    logit ``scale``."""

    protos: np.ndarray
    center: np.ndarray
    scale: float


def centred(x_unit: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Unit rows minus ``center``, renormalised (N, D)."""
    return unit(np.asarray(x_unit, np.float32) - center[None])


def refine(
    support: np.ndarray,
    y: np.ndarray,
    n_way: int,
    folder: np.ndarray,
    known: np.ndarray | None = None,
    *,
    scale: float = DEFAULT_SCALE,
    iterations: int = ITERATIONS,
    cap: float = CAP,
    trust: float = TRUST,
    center: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> RefinedPrototypes:
    """Prototypes refined on ``folder`` (M, D) embeddings; ``support`` (S, D), ``y`` (S,) ids.

    ``known`` (M,) in [0, 1]: how much each folder image may pull (1 - unknown score; all 1 when
    None). ``center`` (D,): subtracted from unit rows (default: the mean unit folder embedding).
    ``trust``: least cosine of a refined prototype to its examples' prototype (:data:`TRUST`).
    ``weights`` (S,): each example's weight in its class's prototype (all 1 when None); the cap
    and the trust region count in these units.
    """
    y = np.asarray(y, np.int64)
    folder_unit = unit(folder)
    if center is None:
        center = folder_unit.mean(0) if len(folder_unit) else np.zeros(support.shape[1])
    center = np.asarray(center, np.float32)
    zs = centred(unit(support), center)
    zu = centred(folder_unit, center)
    w_s = np.ones(len(y), np.float32) if weights is None else np.asarray(weights, np.float32)
    counts = np.maximum(np.bincount(y, w_s, minlength=n_way), 1).astype(np.float32)
    one_hot = np.zeros((n_way, len(y)), np.float32)
    one_hot[y, np.arange(len(y))] = w_s
    base = (one_hot @ zs) / counts[:, None]  # (C, D) weighted means of the examples
    protos = anchor = unit(base)
    k = np.ones(len(zu), np.float32) if known is None else np.asarray(known, np.float32)
    with one_thread():  # small products: thread wake-ups would dominate (adapters/relabel.py)
        for _ in range(iterations if len(zu) else 0):
            r = softmax_rows(np.float32(scale) * (zu @ protos.T))  # (M, C) responsibilities
            w = r * (row_reduce(r, np.maximum) * k)[:, None]
            mass = w.sum(0)  # (C,)
            mean = (w.T @ zu) / np.maximum(mass, 1e-12)[:, None]
            beta = np.minimum(mass, cap) / counts
            protos = _within_trust(base, beta[:, None] * mean, anchor, trust)
    return RefinedPrototypes(protos.astype(np.float32), center, float(scale))


_SHRINK = np.array([1.0, 0.75, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05, 0.0], np.float32)


def _within_trust(
    base: np.ndarray, pull: np.ndarray, anchor: np.ndarray, trust: float
) -> np.ndarray:
    """Unit ``base + f * pull`` (C, D) per class, with the largest ``f`` of :data:`_SHRINK` whose
    cosine to ``anchor`` (C, D, the examples' unit prototypes) is at least ``trust``."""
    cand = base[None] + _SHRINK[:, None, None] * pull[None]  # (F, C, D)
    cand /= np.maximum(np.sqrt(np.einsum("fcd,fcd->fc", cand, cand)), 1e-12)[..., None]
    ok = np.einsum("fcd,cd->fc", cand, anchor) >= trust  # (F, C)
    ok[-1] = True  # f = 0: the examples' own prototype
    return cand[ok.argmax(0), np.arange(len(base))]


def predict(
    x: np.ndarray,
    inverse_norms: np.ndarray | None,
    refined: RefinedPrototypes,
    scorer: UnknownScorer | None = None,
    cache: CosineCache | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities ``(N, C)`` with refined prototypes and, with ``scorer``, unknown scores (N,).

    One product ``x @ [refined | centre | scorer prototypes]`` over embeddings ``x`` (N, D);
    ``inverse_norms`` (N, 1): ``1 / |x|`` (the session's cached query features) or None.
    ``cache``: cosines of these ``x`` kept from the last call, so that the scorer's prototypes of
    unchanged classes are not multiplied again (:class:`~.relabel.CosineCache`).
    """
    c = len(refined.protos)
    mu = np.asarray(refined.center, np.float32)
    fresh = np.concatenate([refined.protos, mu[None]]).astype(np.float32, copy=False)
    sims: np.ndarray | None = None
    if scorer is None:
        out = cosine_to_prototypes(x, inverse_norms, fresh)
    elif cache is None:
        out = cosine_to_prototypes(x, inverse_norms, np.concatenate([fresh, scorer.protos]))
        out, sims = out[:, : c + 1], out[:, c + 1 :]
    else:
        out, sims = cache.cosines(x, inverse_norms, fresh, scorer.protos)
    # unit x minus centre: (x·p - μ·p) / |x - μ|, |x - μ|² = 1 - 2 x·μ + |μ|²
    sq = np.maximum(1 - 2 * out[:, c] + mu @ mu, 1e-12)
    logits = out[:, :c] - (refined.protos @ mu)[None]
    logits *= (np.float32(refined.scale) / np.sqrt(sq))[:, None]
    probs = softmax_rows(logits)
    return probs, None if scorer is None or sims is None else scorer.scores(sims)


def fitted_scale(support: np.ndarray, y: np.ndarray, n_way: int, center: np.ndarray) -> float:
    """The cosine logit scale for the centred space, fitted leave-one-out on the support set
    (the metric adapter's calibration) when a class has two examples; else the default.

    The last answer is kept for the same inputs (compared byte for byte): a review label leaves
    the given examples and the centre as they were, and the fit took ~2 ms of each re-label."""
    from fewshot_gui.adapters.metric import fit_scale, loo_similarity

    support = np.ascontiguousarray(support, np.float32)
    center = np.ascontiguousarray(center, np.float32)
    y = np.ascontiguousarray(y, np.int64)
    key = (n_way, support.tobytes(), y.tobytes(), center.tobytes())
    if _LAST_SCALE and _LAST_SCALE[0] == key:
        return _LAST_SCALE[1]
    yt = torch.from_numpy(y)
    if n_way < 2 or int(torch.bincount(yt).max()) < 2:
        scale = DEFAULT_SCALE
    else:
        z = torch.from_numpy(centred(unit(support), center))
        sims, yk = loo_similarity(z, yt, n_way, "cosine")
        scale = fit_scale(sims, yk, n_way, DEFAULT_SCALE) if len(yk) else DEFAULT_SCALE
    _LAST_SCALE[:] = [key, scale]
    return scale


_LAST_SCALE: list = []  # [key, scale] of the last fitted_scale call


def sample_rows(n: int, size: int = SAMPLE) -> np.ndarray:
    """Sorted indices of a fixed-seed sample of ``size`` of ``n`` rows (all when ``n <= size``)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size, replace=False))


@dataclass
class SupportState:
    """What a labeling session derives from its support set for open-set scoring and refinement:
    the unknown scorer, and the refined prototypes of the folder as last seen.

    ``support`` / ``y`` are the examples the user gave (they define the unknown scorer, the
    centre and the temperature); ``reviewed`` / ``reviewed_y`` the images labeled while
    reviewing, which only join the refinement, at :data:`REVIEWED_WEIGHT`."""

    scorer: UnknownScorer
    support: np.ndarray  # (S, D)
    y: np.ndarray  # (S,) class ids in the adapter's class order
    n_way: int
    reviewed: np.ndarray | None = None  # (R, D)
    reviewed_y: np.ndarray | None = None  # (R,)
    _refined: RefinedPrototypes | None = None
    _refined_for: int = -1
    _folder_scorer: UnknownScorer | None = None
    _folder_scorer_for: int = -1

    @property
    def protos(self) -> np.ndarray:
        return self.scorer.protos

    @classmethod
    def fit(
        cls,
        support: np.ndarray,
        labels: list[str],
        classes: list[str],
        encoder: str | None,
        reviewed: Sequence[bool] | None = None,
    ) -> SupportState:
        """``support`` (S, D) with class names ``labels`` (S); ``reviewed`` (S,): which rows were
        labeled while reviewing (a class with no other row keeps its review labels as examples)."""
        index = {c: i for i, c in enumerate(classes)}
        y = np.fromiter((index[lab] for lab in labels), np.int64, len(labels))
        support = np.asarray(support, np.float32)
        late = np.zeros(len(y), bool) if reviewed is None else np.asarray(reviewed, bool)
        late &= (np.bincount(y[~late], minlength=len(classes)) > 0)[y]
        scorer = UnknownScorer.fit(support[~late], y[~late], prior_for(encoder))
        return cls(scorer, support[~late], y[~late], len(classes), support[late], y[late])

    def center(self, folder: np.ndarray) -> np.ndarray:
        """The direction subtracted before refining (D,): a blend of the folder's mean unit
        embedding and the class-balanced mean of the examples' prototypes, the latter weighted by
        the share of classes with two or more examples (all 1-shot: the folder's mean; all ≥ 2:
        the examples'). An imbalanced folder's mean leans toward its largest class (held-out
        Flowers 5-shot, class sizes 10x apart: -1.3 points, where the examples' mean gains 0.2);
        the blend moves by at most 1/C per correction, so the centre never jumps while reviewing."""
        weight = float((np.bincount(self.y, minlength=self.n_way) >= 2).mean())
        if not len(folder):
            weight = 1.0
        examples = self.scorer.protos.mean(0)
        return weight * examples + (1 - weight) * (folder.mean(0) if len(folder) else examples)

    def folder_scorer(self, folder_size: int, sample: Callable[[], np.ndarray]) -> UnknownScorer:
        """The unknown scorer relaxed to the folder (:meth:`UnknownScorer.for_folder` on
        ``sample()``), recomputed only when the folder's size changed since the last call."""
        if folder_size <= 0:
            return self.scorer
        if self._folder_scorer is None or folder_size != self._folder_scorer_for:
            folder = unit(sample())
            self._folder_scorer = self.scorer.for_folder(folder @ self.scorer.protos.T)
            self._folder_scorer_for = folder_size
        return self._folder_scorer

    def refined(self, folder_size: int, sample: Callable[[], np.ndarray]) -> RefinedPrototypes:
        """Prototypes refined on ``sample()`` (the folder's embeddings), recomputed only when the
        folder's size changed since the last call."""
        if self._refined is None or folder_size != self._refined_for:
            with single_thread():  # small ops: thread wake-ups would dominate (adapters/base.py)
                folder = unit(sample())
                center = self.center(folder)
                scorer = self.folder_scorer(folder_size, sample)
                known = 1.0 - scorer.scores(folder @ scorer.protos.T)
                # responsibilities at a fixed scale: the leave-one-out fit jumps when a first
                # class gets its second example, and refinement must not jump with it
                support, y, weights = self.support, self.y, None
                if self.reviewed is not None and len(self.reviewed):
                    support = np.concatenate([support, self.reviewed])
                    y = np.concatenate([y, self.reviewed_y])
                    weights = np.r_[
                        np.ones(len(self.y)), np.full(len(self.reviewed), REVIEWED_WEIGHT)
                    ]
                self._refined = refine(
                    support, y, self.n_way, folder, known, center=center, weights=weights
                )
                self._refined.scale = fitted_scale(self.support, self.y, self.n_way, center)
            self._refined_for = folder_size
        return self._refined
