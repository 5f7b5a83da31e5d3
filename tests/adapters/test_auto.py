"""``auto``: per-task method choice by cross-validation on the support set."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from fewshot_gui.adapters import create_adapter
from fewshot_gui.adapters.auto import (
    CANDIDATE_OPTIONS,
    AutoAdapter,
    clearly_better,
    make_folds,
    split_states,
)
from fewshot_gui.adapters.metalstm import MetaLSTMLearner
from fewshot_gui.core.errors import UsageError

DIM = 32


def blobs(seed: int, way: int, shot: int, spread: float = 1.0, sep: float = 1.0):
    """Gaussian classes: support (way*shot, DIM), labels, and a query sampler."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(way, DIM)) * sep

    def sample(n: int, c: int) -> np.ndarray:
        return (centers[c] + rng.normal(size=(n, DIM)) * spread).astype(np.float32)

    x = np.concatenate([sample(shot, c) for c in range(way)])
    y = [f"c{c}" for c in range(way) for _ in range(shot)]
    return x, y, sample


def multimodal(seed: int, way: int = 3, modes: int = 4, shot_per_mode: int = 3):
    """Each class is a ring of ``modes`` tight, far-apart clusters with a shared mean: prototypes
    collapse onto each other, while a nearest-neighbour memory separates the classes."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(way * modes, DIM)) * 3.0
    centers -= centers.reshape(way, modes, DIM).mean(1).repeat(modes, 0)  # equal class means
    xs, ys, qs, qy = [], [], [], []
    for c in range(way):
        for m in range(modes):
            center = centers[c * modes + m] + 1.0
            xs.append(center + rng.normal(size=(shot_per_mode, DIM)) * 0.1)
            ys += [f"c{c}"] * shot_per_mode
            qs.append(center + rng.normal(size=(10, DIM)) * 0.1)
            qy += [f"c{c}"] * 10
    x = np.concatenate(xs).astype(np.float32)
    return x, ys, np.concatenate(qs).astype(np.float32), np.array(qy)


def accuracy(adapter, q, truth) -> float:
    p = adapter.predict_proba(q)
    return float(np.mean(np.array(adapter.classes)[p.argmax(1)] == truth))


def test_one_shot_falls_back_to_metric_without_evaluating():
    x, y, _ = blobs(0, way=5, shot=1)
    auto = create_adapter("auto").fit(x, y)
    assert auto.chosen == "metric" and auto.scores == {}
    assert auto.reason() == "metric: methods are compared once every class has 3 examples"
    assert auto.describe() == "auto → " + auto.reason()
    metric = create_adapter("metric", center=CANDIDATE_OPTIONS["metric"]["center"]).fit(x, y)
    np.testing.assert_allclose(auto.predict_proba(x), metric.predict_proba(x), atol=1e-6)
    auto.fit(x[:3], ["only"] * 3)  # a single class: nothing to tell apart
    assert auto.chosen == "metric" and "single class" in auto.describe()
    assert auto.reason() == "metric: a single class, nothing to compare"


def test_folds_are_stratified_and_never_empty_a_class():
    y = torch.tensor([0, 0, 1, 1, 1, 2])  # class 2 has one example: never held out
    fold, scheme = make_folds(y, 3, max_folds=10)
    assert scheme == "LOO" and fold[5] == -1 and sorted(fold[:5].tolist()) == [0, 1, 2, 3, 4]
    y = torch.arange(4).repeat_interleave(6)  # 6 per class → stratified 5-fold
    fold, scheme = make_folds(y, 4)
    assert scheme == "5-fold" and (fold >= 0).all()
    for k in range(5):  # every fold leaves every class with training examples
        assert set(y[fold != k].tolist()) == {0, 1, 2, 3}
    y = torch.arange(20).repeat_interleave(2)  # 40 evaluable examples, capped at 4 folds
    fold, scheme = make_folds(y, 20, max_folds=4)
    assert scheme == "4-fold"
    for k in range(4):
        assert set(y[fold != k].tolist()) == set(range(20))


@pytest.mark.parametrize("center", [0.0, 0.5])
def test_scores_match_refitting_each_fold(center):
    """The closed-form metric and memory scores equal refitting on each fold (metric: with the
    temperature, and the centre, refitted on the fold too)."""
    x, y, _ = blobs(1, way=4, shot=3, spread=1.5, sep=0.8)
    x += 2.0  # a direction every embedding shares: centring matters
    options = {"metric": {"center": center}, "memory": {}}
    auto = create_adapter("auto", candidates="metric,memory", candidate_options=options).fit(x, y)
    fold, _ = make_folds(auto.targets, 4, auto.max_folds)
    for method in ("metric", "memory"):
        fast, _ = auto._held_out(method, auto.targets, fold, 4)
        test = (fold >= 0).nonzero().flatten()
        for k in range(int(fold.max()) + 1):
            rows = (fold[test] == k).nonzero().flatten()
            train = (fold != k).nonzero().flatten().numpy()
            ref = create_adapter(method, **options[method]).fit(x[train], [y[i] for i in train])
            predicted = ref.predict_proba(x[test[rows].numpy()])
            np.testing.assert_allclose(fast[rows].exp().numpy(), predicted, atol=1e-5)


def test_choice_is_at_least_as_good_as_metric_on_the_support_set():
    for seed in range(4):
        x, y, _ = blobs(seed, way=5, shot=6, spread=2.0, sep=0.7)  # hard: scores differ
        auto = create_adapter("auto").fit(x, y)
        assert set(auto.scores) == {"metric", "memory", "anil"}
        assert auto.scores[auto.chosen] >= auto.scores["metric"]
        assert auto.scheme == "5-fold" and auto.held_out == 30


def test_picks_memory_where_prototypes_fail():
    x, y, q, truth = multimodal(0)
    auto = create_adapter("auto").fit(x, y)
    assert auto.chosen == "memory", auto.describe()
    assert auto.scores["memory"] > auto.scores["metric"] + 0.3
    metric = create_adapter("metric").fit(x, y)
    assert accuracy(auto, q, truth) > accuracy(metric, q, truth) + 0.3
    assert auto.reason().startswith("memory: clearly better than metric on your 36 examples (")
    assert auto.describe().startswith("auto → memory: clearly better")
    assert "(held-out, 5-fold: metric " in auto.describe()
    assert auto.details().startswith("Held-out accuracy (5-fold, 36 examples): metric ")
    assert auto.temperature_scale != 1.0  # calibrated on its held-out predictions
    auto.add_example(x[0] + 10.0, "new class")  # no evidence for a new class: memory is kept
    assert auto.chosen == "memory" and auto.reason().startswith("memory: kept until")


def test_picks_metric_where_it_is_clearly_better():
    """Isotropic, noisy classes: averaging wins over nearest neighbours; a refitted candidate
    that fails (here: a broken state) is skipped and reported."""
    x, y, _ = blobs(3, way=5, shot=10, spread=3.0, sep=1.0)
    broken = {"memory.key_proj.weight": torch.zeros(3, 3)}  # wrong size for these embeddings
    auto = create_adapter("auto", candidates="metric,memory", state=broken).fit(x, y)
    assert auto.scheme == "5-fold"
    assert auto.chosen == "metric" and "memory" in auto.failures
    assert "Failed: memory" in auto.details()
    auto = create_adapter("auto", candidates=["memory", "metric"]).fit(x, y)
    assert auto.scores["metric"] > auto.scores["memory"], auto.describe()
    assert auto.chosen == "metric"


def test_describe_says_why_in_plain_words_and_details_give_every_score():
    x, y, _ = blobs(4, way=3, shot=10, spread=1.5, sep=0.8)
    auto = create_adapter("auto").fit(x, y)
    assert auto.chosen == "metric"
    assert auto.reason() == "metric: the other methods were not clearly better on your 30 examples"
    for method, score in auto.scores.items():
        assert f"{method} {score:.0%}" in auto.details()


def test_no_switch_without_enough_evidence():
    """Memory is far better on these classes, but 4 examples per class (12 in all) are too few to
    tell; nor is a refitted candidate compared on fewer folds than MIN_FOLDS to fit the budget."""
    x, y, _, _ = multimodal(0, shot_per_mode=1)
    auto = create_adapter("auto").fit(x, y)
    assert auto.chosen == "metric" and auto.scores == {}
    assert "compared once you have 30 examples" in auto.reason()
    x, y, _ = blobs(9, way=3, shot=10)
    auto = create_adapter("auto", candidates="metric,anil,memory", budget_s=1e-6).fit(x, y)
    assert auto.skipped == ["anil"] and set(auto.scores) == {"metric", "memory"}
    assert auto.scheme == "5-fold" and "Not compared (too slow" in auto.details()
    with pytest.raises(UsageError, match="max_folds"):
        create_adapter("auto", max_folds=2)


def test_clearly_better_needs_a_margin_beyond_the_noise():
    def right(n_both: int, only_a: int, only_b: int, n: int = 60) -> tuple:
        a = torch.zeros(n, dtype=torch.bool)
        b = torch.zeros(n, dtype=torch.bool)
        a[: n_both + only_a] = True
        b[:n_both] = True
        b[n_both + only_a : n_both + only_a + only_b] = True
        return a, b

    assert not clearly_better(*right(40, 4, 0))  # 4 more of 60: below 5 %
    assert clearly_better(*right(40, 8, 0))  # 8 more, no disagreement the other way
    assert not clearly_better(*right(30, 14, 6))  # 8 more, but 20 disagreements: noise
    assert clearly_better(*right(30, 16, 3))  # 13 more: 13 ≥ 2.5 × √19
    assert not clearly_better(*right(40, 0, 8))


def test_hysteresis_keeps_the_method_in_use_on_small_differences():
    auto = AutoAdapter(candidates="metric,memory")
    truth = torch.zeros(40, dtype=torch.long)

    def logp(right: int) -> torch.Tensor:  # right on the first ``right`` examples
        out = torch.zeros(40, 2)
        out[right:, 1] = 1.0
        return out

    slightly = {"metric": logp(30), "memory": logp(33)}
    assert auto._challenge("metric", slightly, truth) == "metric"
    assert auto._challenge("memory", {"metric": logp(33), "memory": logp(30)}, truth) == "memory"
    clearly = {"metric": logp(25), "memory": logp(35)}
    assert auto._challenge("metric", clearly, truth) == "memory"
    assert auto._challenge("memory", clearly, truth) == "memory"


def test_no_flip_flop_over_a_sequence_of_additions():
    """Re-deciding after every added example on classes where metric and memory are close: the
    choice never changes back and forth."""
    x, y, sample = blobs(10, way=4, shot=3, spread=1.6, sep=0.8)
    auto = create_adapter("auto", candidates="metric,memory", redecide_fraction=0.01).fit(x, y)
    chosen = [auto.chosen]
    rng = np.random.default_rng(0)
    for _ in range(40):
        c = int(rng.integers(4))
        auto.add_example(sample(1, c)[0], f"c{c}")
        chosen.append(auto.chosen)
    assert auto.scores  # compared, many times
    assert sum(a != b for a, b in pairwise(chosen)) <= 1, chosen


def test_redecides_on_growth_or_new_class_only():
    x, y, sample = blobs(5, way=3, shot=5)
    auto = create_adapter("auto").fit(x, y)  # 15 examples: re-decide after 3 edits
    first = auto.adapter
    auto.add_example(sample(1, 0)[0], "c0")
    auto.remove_example(0)
    assert auto.adapter is first and auto.support_size == 15  # forwarded
    assert first.support_size == 15
    auto.add_example(sample(1, 1)[0], "c1")  # third edit: 3 ≥ 0.2 × 15
    assert auto.adapter is not first and auto.adapter.support_size == 16
    second = auto.adapter
    auto.add_example(sample(1, 2)[0] + 5.0, "new class")
    assert auto.adapter is not second and auto.classes[-1] == "new class"
    # forwarded and re-decided adapters predict like a fresh fit on the same support set
    fresh = create_adapter("auto").fit(np.stack([r.numpy() for r in auto._x]), auto.support_labels)
    q = sample(5, 1)
    np.testing.assert_allclose(auto.predict_proba(q), fresh.predict_proba(q), atol=1e-5)


def test_class_order_kept_after_redecision():
    """A refit orders classes by first appearance; auto keeps the base class order anyway."""
    x, y, sample = blobs(6, way=2, shot=3)
    auto = create_adapter("auto", redecide_fraction=0.01).fit(x, y)  # re-decide on every edit
    auto.remove_example(0)
    auto.remove_example(0)
    auto.remove_example(0)  # c0 gone, then re-added: it moves to the end
    auto.add_example(sample(1, 0)[0], "c0")
    auto.add_example(sample(1, 0)[0], "c0")
    assert auto.classes == ["c1", "c0"]
    p = auto.predict_proba(sample(4, 0))
    assert (p.argmax(1) == 1).all()


def test_state_split_by_prefix_and_states_argument():
    state = {
        "metric.log_scale": torch.tensor(np.log(3.0)),
        "memory.log_scale": torch.tensor(np.log(7.0)),
        "memory.key_proj.weight": torch.eye(DIM),
        "memory.query_proj.weight": torch.eye(DIM),
        "orphan": torch.zeros(1),
    }
    parts = split_states(state, ["metric", "memory", "anil"])
    assert set(parts) == {"metric", "memory"} and set(parts["metric"]) == {"log_scale"}
    auto = AutoAdapter(state=state)
    assert "metric" in auto.states and "anil" not in auto.states
    assert "metalstm" not in auto.candidates  # untrained: left out by default
    x, y, _ = blobs(7, way=5, shot=1)
    auto.fit(x, y)  # 1-shot: metric with its meta-learned default scale
    assert np.isclose(auto.adapter.scale, 3.0)
    memory = auto._make("memory").fit(x, y)
    assert np.isclose(float(memory.module.log_scale.detach().exp()), 7.0)
    lstm_state = MetaLSTMLearner(DIM, steps=1).state_dict()
    auto = AutoAdapter(state=state, states={"anil": None, "metalstm": lstm_state})
    assert "metalstm" in auto.candidates  # meta-learned: a default candidate
    x, y, _ = blobs(7, way=3, shot=10)
    auto.fit(x, y)
    assert "metalstm" in auto.scores
    assert int(auto._make("metalstm").fit(x, y).module.inner_steps) == 1


def test_all_four_families_and_options():
    x, y, _ = blobs(8, way=3, shot=10, spread=1.5, sep=0.8)
    auto = create_adapter(
        "auto",
        candidates=["metric", "memory", "anil", "metalstm"],
        candidate_options={"anil": {"steps": 2}},
    ).fit(x, y)
    assert set(auto.scores) == {"metric", "memory", "anil", "metalstm"}
    assert auto.scores[auto.chosen] >= auto.scores["metric"]
    with pytest.raises(UsageError, match="metric"):
        create_adapter("auto", candidates=["nope"])
    with pytest.raises(UsageError):
        create_adapter("auto", candidates=["auto"])
    with pytest.raises(UsageError):
        create_adapter("auto", candidates=[])


def test_centred_metric_predicts_like_centred_features():
    """``center``: prototypes and queries are unit embeddings minus the class-balanced mean
    direction, renormalised; the one-product query path equals computing it directly."""
    x, y, sample = blobs(11, way=3, shot=4)
    x += 3.0
    metric = create_adapter("metric", center=1.0, calibrate=False).fit(x, y)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = np.mean([unit[i * 4 : i * 4 + 4].mean(0) for i in range(3)], 0)
    z = unit - c
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    protos = np.stack([z[i * 4 : i * 4 + 4].mean(0) for i in range(3)])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    q = sample(6, 1) + 3.0
    qz = q / np.linalg.norm(q, axis=1, keepdims=True) - c
    qz /= np.linalg.norm(qz, axis=1, keepdims=True)
    logits = metric.scale * qz @ protos.T
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(metric.predict_proba(q), expected, atol=1e-5)
    with pytest.raises(UsageError, match="cosine"):
        create_adapter("metric", center=1.0, distance="euclidean")
