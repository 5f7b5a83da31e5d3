"""Open-set unknown score on synthetic clusters: clutter ranks above known images, the auto
threshold keeps about 95 % of known images, and the score is not the softmax maximum."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_gui.adapters.open_set import (
    AUTO_THRESHOLD,
    DEFAULT_THRESHOLD,
    Prior,
    UnknownScorer,
    auroc,
    cosine_to_prototypes,
    fit_prior,
    resolve_threshold,
    unit,
)

DIM = 64


def clusters(rng, n_classes: int, per_class: int, noise: float, dim: int = DIM):
    """Unit class centres and ``per_class`` noisy images of each: ``(x (N, D), y (N,))``."""
    centres = unit(rng.normal(size=(n_classes, dim)))
    y = np.repeat(np.arange(n_classes), per_class)
    x = centres[y] + noise * rng.normal(size=(len(y), dim)) / np.sqrt(dim)
    return x.astype(np.float32), y


def scores_of(scorer: UnknownScorer, x: np.ndarray) -> np.ndarray:
    return scorer.scores(cosine_to_prototypes(x, None, scorer.protos))


def test_far_clutter_scores_above_every_known_image() -> None:
    rng = np.random.default_rng(0)
    x, y = clusters(rng, 8, 40, noise=0.8)
    known = np.isin(y, np.arange(5))
    support_ids = np.concatenate([np.flatnonzero(y == c)[:5] for c in range(5)])
    scorer = UnknownScorer.fit(x[support_ids], y[support_ids], Prior(0.6, 0.08, 1.0))
    queries = np.setdiff1d(np.flatnonzero(known), support_ids)
    far = unit(rng.normal(size=(100, DIM))).astype(np.float32)  # no class at all
    near = np.flatnonzero(~known)  # the three other classes
    s_known, s_far, s_near = (
        scores_of(scorer, x[queries]),
        scores_of(scorer, far),
        scores_of(scorer, x[near]),
    )
    assert auroc(s_known, s_far) > 0.99
    assert auroc(s_known, s_near) > 0.9
    assert s_far.min() > np.median(s_known)


def test_auto_threshold_keeps_about_95_percent_of_known_images() -> None:
    rng = np.random.default_rng(1)
    x, y = clusters(rng, 30, 60, noise=1.0)
    prior = fit_prior(x[y < 15], y[y < 15], tasks=40)  # the "meta-training domain"
    kept = []
    for _ in range(30):
        classes = rng.choice(np.arange(15, 30), 5, replace=False)
        for shot in (1, 5):
            support, sy, queries = [], [], []
            for k, c in enumerate(classes):
                ids = rng.permutation(np.flatnonzero(y == c))
                support += list(ids[:shot])
                sy += [k] * shot
                queries += list(ids[shot:])
            scorer = UnknownScorer.fit(x[support], np.array(sy), prior)
            kept.append((scores_of(scorer, x[queries]) <= AUTO_THRESHOLD).mean())
    assert 0.90 <= float(np.mean(kept)) <= 0.985


def test_distance_score_beats_max_softmax_when_one_class_is_merely_less_far() -> None:
    """Two similar classes: their own images get a modest softmax maximum, while clutter far from
    both but less far from one gets a confident one; the distance score is not fooled."""
    rng = np.random.default_rng(2)
    e1, e2, e3 = np.eye(DIM)[:3]
    centres = np.stack([e1, 0.8 * e1 + 0.6 * e2])
    y = np.repeat([0, 1], 30)
    x = unit(centres[y] + 0.15 * rng.normal(size=(60, DIM)) / np.sqrt(DIM))
    scorer = UnknownScorer.fit(x[[0, 1, 30, 31]], np.array([0, 0, 1, 1]), Prior(0.9, 0.05, 1.0))
    far = unit(0.4 * e1 - 0.5 * e2 + 0.8 * e3 + 0.1 * rng.normal(size=(60, DIM)))
    known = x[np.r_[2:30, 32:60]]
    sims_known = cosine_to_prototypes(known, None, scorer.protos)
    sims_far = cosine_to_prototypes(far, None, scorer.protos)

    def softmax_max(s: np.ndarray) -> np.ndarray:
        e = np.exp(10 * (s - s.max(1, keepdims=True)))
        return (e / e.sum(1, keepdims=True)).max(1)

    by_distance = auroc(scorer.scores(sims_known), scorer.scores(sims_far))
    by_softmax = auroc(-softmax_max(sims_known), -softmax_max(sims_far))
    assert by_distance > 0.99 and by_softmax < 0.8


def test_cached_inverse_norms_give_the_same_cosines() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 8)).astype(np.float32) * 3
    protos = unit(rng.normal(size=(3, 8)))
    inv = 1 / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(
        cosine_to_prototypes(x, inv, protos), unit(x) @ protos.T, rtol=1e-5, atol=1e-6
    )


def test_thresholds_and_auroc() -> None:
    assert resolve_threshold("auto") == AUTO_THRESHOLD
    assert resolve_threshold("0.5") == 0.5 and resolve_threshold("off") is None
    assert resolve_threshold(None) == DEFAULT_THRESHOLD
    with pytest.raises(ValueError):
        resolve_threshold(1.5)
    assert auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5


def test_folder_of_another_domain_is_not_called_unknown_but_its_clutter_still_is() -> None:
    """A prior from a domain whose classes are tight (a = 0.9) meets a folder whose classes are
    loose (one example each): from the support set alone most known images look unknown; relaxed
    to the folder they keep their labels, and images of no class are still caught."""
    rng = np.random.default_rng(3)
    x, y = clusters(rng, 5, 60, noise=1.2)
    support = np.array([np.flatnonzero(y == c)[0] for c in range(5)])
    queries = np.setdiff1d(np.arange(len(y)), support)
    far = unit(rng.normal(size=(40, DIM))).astype(np.float32)
    scorer = UnknownScorer.fit(x[support], y[support], Prior(0.9, 0.03, 1.0))
    strict = scores_of(scorer, x[queries])
    assert (strict > DEFAULT_THRESHOLD).mean() > 0.5  # the support-only calibration fails here
    folder = np.concatenate([x[queries], far, far[:20]])  # clutter: a third of the folder
    relaxed = scorer.for_folder(cosine_to_prototypes(folder, None, scorer.protos))
    known, clutter = scores_of(relaxed, x[queries]), scores_of(relaxed, far)
    assert (known > DEFAULT_THRESHOLD).mean() < 0.05
    assert (clutter > AUTO_THRESHOLD).mean() > 0.9
    assert auroc(known, clutter) > 0.95


def test_folder_never_makes_the_score_stricter() -> None:
    """Relaxing only lowers each class's expected similarity and widens the spread: a folder
    whose images are tighter than the prior leaves every score where the support set put it."""
    rng = np.random.default_rng(4)
    x, y = clusters(rng, 4, 50, noise=0.3)
    support = np.array([np.flatnonzero(y == c)[0] for c in range(4)])
    scorer = UnknownScorer.fit(x[support], y[support], Prior(0.5, 0.1, 1.0))
    sims = cosine_to_prototypes(x, None, scorer.protos)
    relaxed = scorer.for_folder(sims)
    assert np.all(relaxed.mu <= scorer.mu + 1e-7) and relaxed.sigma >= scorer.sigma
    assert np.all(relaxed.scores(sims) <= scorer.scores(sims) + 1e-6)
    assert scorer.for_folder(sims[:0]) is scorer
