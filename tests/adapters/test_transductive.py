"""Transductive prototype refinement on synthetic clusters: it helps a 1-shot task, and an
imbalanced folder full of clutter does not make it worse than the examples alone."""

from __future__ import annotations

import numpy as np

from fewshot_gui.adapters.open_set import Prior, UnknownScorer, cosine_to_prototypes, unit
from fewshot_gui.adapters.transductive import (
    SupportState,
    centred,
    predict,
    refine,
    sample_rows,
)

DIM = 64


def task(rng, sizes, noise=1.5, clutter=0, shot=1):
    """Classes of ``sizes`` folder images each (plus ``shot`` examples), and ``clutter`` images of
    no class: ``(support, support ids, folder, folder ids (-1: clutter))``."""
    centres = unit(rng.normal(size=(len(sizes), DIM)))

    def draw(c: int, n: int) -> np.ndarray:
        return centres[c] + noise * rng.normal(size=(n, DIM)) / np.sqrt(DIM)

    support = np.concatenate([draw(c, shot) for c in range(len(sizes))])
    sy = np.repeat(np.arange(len(sizes)), shot)
    folder = np.concatenate([draw(c, n) for c, n in enumerate(sizes)])
    fy = np.repeat(np.arange(len(sizes)), sizes)
    if clutter:
        folder = np.concatenate([folder, rng.normal(size=(clutter, DIM)) / np.sqrt(DIM) * 1.5])
        fy = np.concatenate([fy, np.full(clutter, -1)])
    return support.astype(np.float32), sy, folder.astype(np.float32), fy


def accuracies(rng, sizes, clutter=0, episodes=40):
    """Mean accuracy on the folder's known images: examples' prototypes vs refined."""
    plain, refined = [], []
    for _ in range(episodes):
        support, sy, folder, fy = task(rng, sizes, clutter=clutter)
        state = SupportState.fit(
            support, [str(v) for v in sy], [str(c) for c in range(len(sizes))], None
        )
        known = fy >= 0
        base = cosine_to_prototypes(folder, None, state.protos).argmax(1)
        plain.append((base[known] == fy[known]).mean())
        probs, unknown = predict(
            folder, None, state.refined(len(folder), lambda f=folder: f), state.scorer
        )
        refined.append((probs.argmax(1)[known] == fy[known]).mean())
        assert unknown is not None and unknown.shape == (len(folder),)
    return float(np.mean(plain)), float(np.mean(refined))


def test_refinement_helps_a_balanced_one_shot_task():
    plain, refined = accuracies(np.random.default_rng(0), [30] * 5)
    assert refined > plain + 0.03


def test_refinement_does_not_hurt_an_imbalanced_folder_with_clutter():
    plain, refined = accuracies(np.random.default_rng(1), [60, 30, 12, 6, 3], clutter=60)
    assert refined >= plain - 0.005


def test_clutter_does_not_pull_prototypes():
    """Clutter far from every class barely moves the prototypes: with or without it, the refined
    prototypes are nearly the same."""
    rng = np.random.default_rng(2)
    support, sy, folder, _ = task(rng, [20] * 4, noise=1.0)
    far = unit(rng.normal(size=(200, DIM))).astype(np.float32)
    scorer = UnknownScorer.fit(support, sy, Prior(0.5, 0.1, 1.0))
    mixed = np.concatenate([folder, far])
    known = 1 - scorer.scores(cosine_to_prototypes(mixed, None, scorer.protos))
    center = unit(folder).mean(0)
    clean = refine(support, sy, 4, folder, center=center).protos
    dirty = refine(support, sy, 4, mixed, known, center=center).protos
    assert float((clean * dirty).sum(1).min()) > 0.95


def test_sample_rows_is_fixed_and_bounded():
    assert sample_rows(10, 100).tolist() == list(range(10))
    a, b = sample_rows(5000, 64), sample_rows(5000, 64)
    assert len(a) == 64 and (a == b).all() and (np.diff(a) > 0).all()


def test_refined_prototypes_stay_within_trust_of_their_examples() -> None:
    """A class whose single example sits between two clusters may be pulled toward the folder,
    but never further than cosine ``trust`` from its example (:data:`TRUST` by default): it
    cannot jump into the other cluster; with the trust region off it does."""
    from fewshot_gui.adapters.transductive import TRUST, refine, unit

    rng = np.random.default_rng(5)
    dim = 32
    a, b, c = unit(rng.normal(size=(3, dim)))
    folder = np.concatenate(
        [a + 0.3 * rng.normal(size=(60, dim)) / np.sqrt(dim), c + 0.3 * rng.normal(size=(60, dim))]
    ).astype(np.float32)
    support = np.stack([0.45 * a + 0.55 * b, c]).astype(np.float32)  # class 0: near b, toward a
    centre = np.zeros(dim, np.float32)
    anchor = unit(support)
    for trust in (TRUST, 0.9):
        kept = refine(support, np.array([0, 1]), 2, folder, center=centre, trust=trust).protos
        assert (kept * anchor).sum(1).min() >= trust - 1e-5
    free = refine(support, np.array([0, 1]), 2, folder, center=centre, trust=-1.0).protos
    assert float(free[0] @ anchor[0]) < 0.9  # unconstrained, the folder takes it further
    assert float(free[0] @ a) > float(kept[0] @ a)


def test_review_labels_pull_at_their_weight_and_leave_the_scorer_to_the_examples() -> None:
    """An image labeled while reviewing (a boundary case) weighs REVIEWED_WEIGHT of an example
    in its class's refined prototype, and the unknown scorer, centre and temperature are the
    given examples' alone; a class with only review labels keeps them as its examples."""
    from fewshot_gui.adapters.transductive import REVIEWED_WEIGHT

    rng = np.random.default_rng(3)
    e = unit(rng.normal(size=(4, DIM))).astype(np.float32)  # a0, b0, a-reviewed, c-reviewed
    labels, classes = ["a", "b", "a", "c"], ["a", "b", "c"]
    state = SupportState.fit(e, labels, classes, None, reviewed=[False, False, True, True])
    assert state.y.tolist() == [0, 1, 2]  # c has only a review label: it stays an example
    assert state.reviewed_y.tolist() == [0]
    plain = SupportState.fit(e[[0, 1, 3]], ["a", "b", "c"], classes, None)
    np.testing.assert_allclose(state.scorer.protos, plain.scorer.protos, atol=1e-6)

    folder = np.zeros((0, DIM), np.float32)
    got = state.refined(0, lambda: folder)
    center = state.center(folder)
    zc = centred(unit(e), center)
    want_a = unit((zc[0] + REVIEWED_WEIGHT * zc[2])[None])[0]
    full_a = unit((zc[0] + zc[2])[None])[0]
    np.testing.assert_allclose(got.protos[0], want_a, atol=1e-5)
    assert float(got.protos[0] @ zc[0]) > float(full_a @ zc[0]) + 0.05  # nearer its example
    # the same image given as an example pulls at full weight
    given = SupportState.fit(e, labels, classes, None)
    zg = centred(unit(e), given.center(folder))  # its centre: class a has two examples now
    want_given = unit((zg[0] + zg[2])[None])[0]
    np.testing.assert_allclose(given.refined(0, lambda: folder).protos[0], want_given, atol=1e-5)


def test_fitted_scale_keeps_its_last_answer_only_for_the_same_inputs() -> None:
    import fewshot_gui.adapters.transductive as transductive

    def uncached(*args):
        transductive._LAST_SCALE.clear()
        return transductive.fitted_scale(*args)

    rng = np.random.default_rng(5)
    support = (unit(rng.normal(size=(6, DIM))) + 0.0).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2])
    center = np.zeros(DIM, np.float32)
    first = transductive.fitted_scale(support, y, 3, center)
    assert transductive.fitted_scale(support.copy(), y.copy(), 3, center.copy()) == first
    for k in range(5):  # changed in place (the same array object): never the stale answer
        support[k % 6] = unit(rng.normal(size=(1, DIM)))[0] + support[(k + 1) % 6]
        assert transductive.fitted_scale(support, y, 3, center) == uncached(support, y, 3, center)
        shifted = center + 0.05 * k
        assert transductive.fitted_scale(support, y, 3, shifted) == uncached(support, y, 3, shifted)
    separated = np.repeat(unit(rng.normal(size=(3, DIM))), 2, axis=0).astype(np.float32)
    assert transductive.fitted_scale(separated, y, 3, center) != first
