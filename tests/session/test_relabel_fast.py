"""The fast re-label path (issue 15: 10k images within 20 ms) gives the answers of a
straightforward computation: every optimised piece against a plain reference on random data, and
a session's corrections (refined, unknown scores on, cosines reused between corrections) against
a float64 reference built from the same support set."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fewshot_gui.adapters import relabel
from fewshot_gui.adapters.open_set import (
    FOLDER_QUANTILE,
    MIN_FOLDER_IMAGES,
    PRIOR_WEIGHT,
    Prior,
    UnknownScorer,
    expected_similarity,
    unit,
)
from fewshot_gui.adapters.relabel import CosineCache, cosine_to_prototypes, one_thread
from fewshot_gui.adapters.relabel import softmax_rows as fast_softmax
from fewshot_gui.adapters.transductive import predict, sample_rows
from fewshot_gui.core.types import UNKNOWN, Predictions

PRIOR = Prior(a=0.5, sigma=0.1, spread=1.05)


# --- straightforward references (the code before the fast path, in float64) ---


def reference_fit(support: np.ndarray, y: np.ndarray, prior: Prior) -> UnknownScorer:
    z = unit(support).astype(np.float64)
    n_way = int(y.max()) + 1
    counts = np.bincount(y, minlength=n_way)
    sums = np.zeros((n_way, z.shape[1]))
    np.add.at(sums, y, z)
    pair_sum = ((sums * sums).sum(1) - counts) / 2
    n_pairs = float((counts * (counts - 1) / 2).sum())
    a = (PRIOR_WEIGHT * prior.a + 2 * float(pair_sum.sum())) / (PRIOR_WEIGHT + 2 * n_pairs)
    mu = np.asarray(prior.mu(counts), np.float64).reshape(n_way)
    residuals = []
    for c in np.flatnonzero(counts >= 2):
        own, n = z[y == c], counts[c]
        rest = sums[c][None] - own
        loo = (own * rest).sum(1) / np.linalg.norm(rest, axis=1)
        loo = loo * float(expected_similarity(a, n) / expected_similarity(a, n - 1))
        mu[c] = (PRIOR_WEIGHT * mu[c] + loo.sum()) / (PRIOR_WEIGHT + n)
        residuals.append(loo - loo.mean())
    r = np.concatenate(residuals) if residuals else np.zeros(0)
    dof = sum(len(x) - 1 for x in residuals)
    var = (PRIOR_WEIGHT * prior.sigma**2 + float((r * r).sum())) / (PRIOR_WEIGHT + dof)
    return UnknownScorer(unit(sums), mu.astype(np.float32), math.sqrt(var), prior.spread)


def reference_for_folder(scorer: UnknownScorer, sims: np.ndarray) -> UnknownScorer:
    sims = np.asarray(sims, np.float64)
    nearest, best = sims.argmax(1), sims.max(1)
    mu, spreads = scorer.mu.astype(np.float64).copy(), []
    for c in range(len(mu)):
        own = best[nearest == c]
        if len(own) >= MIN_FOLDER_IMAGES:
            upper, top = np.quantile(own, [FOLDER_QUANTILE, 0.9])
            mu[c] = min(mu[c], float(upper))
            spreads.append(float(top - upper) / 0.6071)
    sigma = max(scorer.sigma, float(np.median(spreads))) if spreads else scorer.sigma
    return UnknownScorer(scorer.protos, mu.astype(np.float32), sigma, scorer.spread)


def reference_scores(scorer: UnknownScorer, sims: np.ndarray) -> np.ndarray:
    z = ((scorer.mu[None].astype(np.float64) - sims) / scorer.sigma).min(1) / scorer.spread
    return 0.5 * (1 + torch.erf(torch.from_numpy(z / math.sqrt(2))).numpy())


def reference_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def reference_predict(x, refined, scorer) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities with the refined prototypes in the centred space, and unknown scores."""
    xu = unit(x).astype(np.float64)
    mu = refined.center.astype(np.float64)
    centred = xu - mu
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    probs = reference_softmax(refined.scale * centred @ refined.protos.astype(np.float64).T)
    return probs, reference_scores(scorer, xu @ scorer.protos.astype(np.float64).T)


def close(a, b, atol=2e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), atol=atol)


# --- the optimised pieces ---


@pytest.mark.parametrize("shots", [[1, 1, 1], [1, 3, 2, 5], [4, 4]])
def test_unknown_scorer_fit_matches_the_reference(shots):
    rng = np.random.default_rng(len(shots))
    y = np.repeat(np.arange(len(shots)), shots)
    support = rng.normal(size=(len(y), 24)) + 2 * rng.normal(size=(len(shots), 24))[y]
    fast, slow = UnknownScorer.fit(support, y, PRIOR), reference_fit(support, y, PRIOR)
    close(fast.protos, slow.protos, 1e-6)
    close(fast.mu, slow.mu, 1e-6)
    assert fast.sigma == pytest.approx(slow.sigma, rel=1e-9)


def test_folder_relaxation_and_scores_match_the_reference():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(5), 2)
    scorer = UnknownScorer.fit(rng.normal(size=(10, 16)), y, PRIOR)
    # class 4 is never nearest, class 3 has fewer than MIN_FOLDER_IMAGES: both keep their mu
    nearest = np.concatenate([np.repeat([0, 1, 2], [40, 9, 25]), [3] * 5])
    sims = rng.uniform(-0.2, 0.6, size=(len(nearest), 5))
    sims[np.arange(len(nearest)), nearest] = rng.uniform(0.6, 0.95, len(nearest))
    fast, slow = scorer.for_folder(sims), reference_for_folder(scorer, sims)
    close(fast.mu, slow.mu, 1e-7)
    assert fast.sigma == pytest.approx(slow.sigma, rel=1e-12)
    assert fast.mu[3] == scorer.mu[3] and fast.mu[4] == scorer.mu[4]
    queries = rng.uniform(-1, 1, size=(300, 5)).astype(np.float32)
    close(fast.scores(queries), reference_scores(fast, queries), 1e-6)


@pytest.mark.parametrize(("n", "d", "k"), [(1000, 64, 3), (777, 1280, 12), (300, 40, 900)])
def test_blocked_cosines_match_one_product(n, d, k):
    rng = np.random.default_rng(k)
    x, protos = rng.normal(size=(n, d)).astype(np.float32), unit(rng.normal(size=(k, d)))
    inverse_norms = 1 / np.linalg.norm(x, axis=1, keepdims=True)
    expected = unit(x).astype(np.float64) @ protos.astype(np.float64).T
    close(cosine_to_prototypes(x, None, protos), expected, 1e-5)
    close(cosine_to_prototypes(x, inverse_norms, protos), expected, 1e-5)


def test_cosine_cache_reuses_only_unchanged_prototypes(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 32)).astype(np.float32)
    protos = unit(rng.normal(size=(6, 32)))
    fresh = unit(rng.normal(size=(3, 32)))
    multiplied = []
    product = relabel.cosine_to_prototypes

    def counting(x, inverse_norms, columns):
        multiplied.append(len(columns))
        return product(x, inverse_norms, columns)

    monkeypatch.setattr(relabel, "cosine_to_prototypes", counting)
    cache = CosineCache()
    changed = protos.copy()
    changed[2] = unit(rng.normal(size=(1, 32)))[0]
    # first call, a changed class, classes reordered and one dropped, one new
    for step in (protos, changed, changed[[5, 0, 2, 1]], np.concatenate([changed, fresh[:1]])):
        out, sims = cache.cosines(x, None, fresh, step)
        close(out, unit(x) @ fresh.T, 1e-5)
        close(sims, unit(x) @ step.T, 1e-5)
    assert multiplied == [3 + 6, 3 + 1, 3 + 0, 3 + 3]  # changed[3], [4] were dropped a step before
    cache.cosines(x[:10], None, fresh, protos)  # other rows: nothing reused
    assert multiplied[-1] == 3 + 6


@pytest.mark.parametrize("classes", [1, 5, 40])
def test_softmax_rows_matches_the_reference(classes):
    rng = np.random.default_rng(classes)
    z = (rng.normal(size=(200, classes)) * 60).astype(np.float32)  # large logits: no overflow
    expected = reference_softmax(z)
    close(fast_softmax(z.copy()), expected, 1e-6)


def test_predictions_labels_match_the_reference():
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(4), size=300).astype(np.float32)
    scores = rng.uniform(size=300).astype(np.float32)
    classes = ["a", "b", "c", "d"]
    best = probs.argmax(1)
    for threshold, by_score in ((None, True), (0.8, True), (0.5, False)):
        made = Predictions.from_probabilities(
            [str(i) for i in range(300)], classes, probs, threshold, scores if by_score else None
        )
        gate = scores if by_score else -probs.max(1)
        limit = threshold if by_score or threshold is None else -threshold
        expected = [
            UNKNOWN if threshold is not None and g > limit else classes[b]
            for b, g in zip(best, gate, strict=True)
        ]
        assert made.labels == expected
        assert all(type(label) is str for label in made.labels)
        close(made.confidences, probs.max(1), 0)


def test_one_thread_restores_the_thread_counts():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_refined_predict_matches_the_reference_with_and_without_cache():
    from fewshot_gui.adapters.transductive import SupportState

    rng = np.random.default_rng(6)
    centres = unit(rng.normal(size=(4, 48)))
    y = np.repeat(np.arange(4), [1, 2, 1, 3])
    support = centres[y] + 0.4 * rng.normal(size=(len(y), 48)) / math.sqrt(48) * 6
    folder = centres[rng.integers(0, 4, 900)] + 2.0 * rng.normal(size=(900, 48)) / math.sqrt(48)
    folder = folder.astype(np.float32)
    state = SupportState.fit(support, [str(c) for c in y], ["0", "1", "2", "3"], None)
    sample = folder[sample_rows(len(folder))]
    scorer = state.folder_scorer(len(folder), lambda: sample)
    refined = state.refined(len(folder), lambda: sample)
    expected = reference_predict(folder, refined, scorer)
    cache = CosineCache()
    for use in (None, cache, cache):  # no cache, a cold cache, a warm one
        probs, unknown = predict(folder, None, refined, scorer, use)
        close(probs, expected[0])
        close(unknown, expected[1])


# --- through the session ---


def _stored_session(tmp_path, rng, n=2400, dim=40):
    from fewshot_gui.cluster.shards import RunInfo
    from fewshot_gui.cluster.stored import StoredSession

    classes = ["moss", "fern", "lichen", "reed"]
    centres = unit(rng.normal(size=(len(classes), dim)))
    truth = rng.integers(0, len(classes), n)
    vectors = centres[truth] + 1.2 * rng.normal(size=(n, dim)) / math.sqrt(dim)
    vectors[: n // 10] = rng.normal(size=(n // 10, dim))  # images of no class
    paths = np.array([f"/archive/{i:05d}.jpg" for i in range(n)])
    # one example is also a folder image: the folder's rows are not one slice (the span path)
    support = [(paths[n // 2], "moss")] + [(f"/ex/{c}.jpg", c) for c in classes[1:]]
    sup_vectors = np.concatenate([vectors[n // 2 : n // 2 + 1], centres[1:]]).astype(np.float32)
    info = RunInfo(classes, "conv4", "id", "metric", "metric", dim, True, "fp", support=support)
    result = SimpleNamespace(
        info=info,
        root=tmp_path,
        paths=paths,
        support=lambda: (support, sup_vectors),
        embeddings=lambda: vectors.astype(np.float32),
        failed_mask=lambda: np.zeros(n, bool),
    )
    session = StoredSession(result)  # type: ignore[arg-type]
    session.unknown_threshold = 0.9  # some images become unknown
    return session, paths


def _check_against_reference(session) -> None:
    from fewshot_gui.adapters.open_set import prior_for

    made = session.predictions()
    classes = session.classes
    state = session._open_set()  # the support set as the session splits it (examples, reviewed)
    x = session._vectors(session._labeled)
    sample = x[sample_rows(len(x))]
    plain = reference_fit(state.support, state.y, prior_for(session.encoder_name))
    scorer = reference_for_folder(plain, unit(sample) @ plain.protos.T)
    refined = state.refined(len(x), lambda: sample)  # the refinement itself: not the fast path
    probs, unknown = reference_predict(x, refined, scorer)
    close(made.probabilities, probs)
    close(made.unknown_scores, unknown)
    best = probs.argmax(1)
    sure = np.sort(probs, 1)[:, -1] - np.sort(probs, 1)[:, -2] > 1e-4  # no near-ties
    sure &= np.abs(unknown - session.unknown_threshold) > 1e-4
    expected = np.where(unknown > session.unknown_threshold, UNKNOWN, np.array(classes)[best])
    assert (np.array(made.labels)[sure] == expected[sure]).all()
    assert (expected == UNKNOWN).any() and (expected != UNKNOWN).any()


def test_corrections_through_the_session_match_the_reference(tmp_path):
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(7)
    session, paths = _stored_session(tmp_path, rng)
    assert session._refines()
    _check_against_reference(session)
    steps = [
        ("add", 10, "fern"),
        ("add", 11, "moss"),
        ("add", 10, "reed"),  # an example moves class
        ("add", 12, "sedge"),  # a new class
        ("remove", 11, ""),
        ("remove", 12, ""),  # the class disappears again
    ]
    for op, row, label in steps:
        if op == "add":
            session.add_example(paths[row], label)
        else:
            session.remove_example(paths[row])
        _check_against_reference(session)


def test_a_row_stored_again_is_not_served_from_the_cache(tmp_path):
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(8)
    session, paths = _stored_session(tmp_path, rng)
    session.add_example(paths[20], "fern")
    moved = session._vectors([paths[3]]) * -1  # the file changed and was embedded again
    session._table.add([paths[3]], moved)
    session._open = None  # as a new support set does (the sample and the cosines follow alone)
    _check_against_reference(session)
