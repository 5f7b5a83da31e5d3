"""The contract every registered adapter keeps, on separable synthetic Gaussian clusters."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_gui.adapters import adapter_family, adapter_names, create_adapter, register_adapter
from fewshot_gui.adapters.metric import MetricAdapter
from fewshot_gui.core.errors import UsageError

NAMES = ["cat", "dog", "bird", "fish", "frog"]
DIM = 64


def clusters(seed: int = 0, spread: float = 0.6):
    """Return ``sample(n, c) -> (n, DIM)`` for 5 well-separated Gaussian classes."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(NAMES), DIM)) * 1.5

    def sample(n: int, c: int) -> np.ndarray:
        return (centers[c] + rng.normal(size=(n, DIM)) * spread).astype(np.float32)

    return sample


def support(sample, shots):
    x = np.concatenate([sample(k, c) for c, k in enumerate(shots)])
    y = [NAMES[c] for c, k in enumerate(shots) for _ in range(k)]
    return x, y


def queries(sample, n=40):
    q = np.concatenate([sample(n, c) for c in range(len(NAMES))])
    return q, np.repeat(np.array(NAMES), n)


def accuracy(adapter, q, truth):
    p = adapter.predict_proba(q)
    return np.mean(np.array(adapter.classes)[p.argmax(1)] == truth)


@pytest.fixture(params=adapter_names())
def name(request):
    return request.param


def test_registry_lists_every_family():
    assert {"metric", "memory", "maml", "fomaml", "anil", "metasgd"} <= set(adapter_names())
    assert adapter_family("metric") == "metric"
    assert adapter_family("memory") == "memory"
    assert adapter_family("anil") == "optimization"


def test_duplicate_and_unknown_names_are_refused():
    with pytest.raises(ValueError):
        register_adapter(type("Again", (MetricAdapter,), {"name": "metric"}))
    with pytest.raises(UsageError, match="metric"):
        create_adapter("no-such-method")
    with pytest.raises(UsageError, match="bogus"):
        create_adapter("metric", bogus=1)


def test_accurate_and_probabilities_well_formed(name):
    sample = clusters()
    x, y = support(sample, [5] * 5)
    adapter = create_adapter(name).fit(x, y)
    q, truth = queries(sample)
    p = adapter.predict_proba(q)
    assert p.shape == (len(q), 5) and p.dtype == np.float32
    assert (p >= 0).all() and np.allclose(p.sum(1), 1, atol=1e-5)
    assert adapter.classes == NAMES  # first-appearance order
    assert adapter.support_size == 25 and adapter.support_labels == y
    assert accuracy(adapter, q, truth) > 0.95


def test_arbitrary_string_labels(name):
    sample = clusters(1)
    labels = ["Ünïcode ✓", "a/b", "", "42", "with space"]
    x = np.concatenate([sample(3, c) for c in range(5)])
    y = [labels[c] for c in range(5) for _ in range(3)]
    adapter = create_adapter(name).fit(x, y)
    assert adapter.classes == labels
    q, _ = queries(sample)
    p = adapter.predict_proba(q)
    expected = np.repeat(np.arange(5), 40)
    assert np.mean(p.argmax(1) == expected) > 0.9


def test_one_shot_classes(name):
    sample = clusters(2)
    adapter = create_adapter(name).fit(*support(sample, [1] * 5))
    q, truth = queries(sample)
    assert accuracy(adapter, q, truth) > 0.9


def test_imbalanced_classes(name):
    sample = clusters(3)
    adapter = create_adapter(name).fit(*support(sample, [1, 10, 10, 10, 10]))
    q, truth = queries(sample)
    p = adapter.predict_proba(q)
    pred = np.array(adapter.classes)[p.argmax(1)]
    assert np.mean(pred[truth == "cat"] == "cat") > 0.9  # the 1-shot class is not swamped
    assert accuracy(adapter, q, truth) > 0.9


def test_add_example_moves_predictions(name):
    sample = clusters(4)
    x, y = support(sample, [3, 3, 3, 3, 0])  # no "frog" yet
    adapter = create_adapter(name).fit(x, y)
    assert "frog" not in adapter.classes
    new, near = sample(1, 4)[0], sample(5, 4)
    adapter.add_example(new, "frog")
    assert adapter.classes[-1] == "frog" and adapter.support_size == 13
    p = adapter.predict_proba(near)
    assert (p.argmax(1) == adapter.classes.index("frog")).all()
    # a query next to a new "dog" example placed among the cats becomes "dog"
    cat_point = sample(1, 0)[0]
    adapter.add_example(cat_point, "dog")
    p = adapter.predict_proba(cat_point[None] + 0.01)
    before = create_adapter(name).fit(x, y).predict_proba(cat_point[None] + 0.01)
    assert p[0, adapter.classes.index("dog")] > before[0, 1]


def test_remove_example_and_drop_class(name):
    sample = clusters(5)
    x, y = support(sample, [2, 2, 2, 2, 1])
    adapter = create_adapter(name).fit(x, y)
    adapter.remove_example(0)
    assert adapter.support_size == 8 and adapter.classes == NAMES
    adapter.remove_example(adapter.support_labels.index("frog"))
    assert adapter.classes == NAMES[:4]
    q, truth = queries(sample)
    p = adapter.predict_proba(q)
    assert p.shape == (len(q), 4)
    keep = truth != "frog"
    assert accuracy(adapter, q[keep], truth[keep]) > 0.9
    with pytest.raises(UsageError):
        adapter.remove_example(100)


def test_non_transductive_and_deterministic(name):
    sample = clusters(6)
    x, y = support(sample, [3] * 5)
    q, _ = queries(sample, 10)
    a = create_adapter(name).fit(x, y)
    batch = a.predict_proba(q)
    alone = np.stack([a.predict_proba(q[i : i + 1])[0] for i in range(0, len(q), 7)])
    np.testing.assert_allclose(alone, batch[::7], rtol=1e-5, atol=1e-6)
    again = create_adapter(name).fit(x, y).predict_proba(q)
    np.testing.assert_allclose(again, batch, rtol=1e-5, atol=1e-6)


def test_empty_support_is_a_usage_error(name):
    adapter = create_adapter(name)
    with pytest.raises(UsageError, match="empty"):
        adapter.fit(np.zeros((0, DIM), np.float32), [])
    with pytest.raises(UsageError, match="empty"):
        adapter.predict_proba(np.zeros((1, DIM), np.float32))
    adapter.fit(np.ones((1, DIM), np.float32), ["only"])
    adapter.remove_example(0)
    assert adapter.classes == [] and adapter.support_size == 0
    with pytest.raises(UsageError, match="empty"):
        adapter.predict_proba(np.zeros((1, DIM), np.float32))


def test_bad_shapes_are_usage_errors(name):
    adapter = create_adapter(name).fit(np.ones((2, DIM), np.float32), ["a", "b"])
    with pytest.raises(UsageError):
        adapter.predict_proba(np.ones((3, DIM + 1), np.float32))
    with pytest.raises(UsageError):
        adapter.fit(np.ones((2, DIM), np.float32), ["a"])
    with pytest.raises(UsageError, match="NaN"):
        adapter.predict_proba(np.full((1, DIM), np.nan, np.float32))


def test_save_and_restore_round_trip(name):
    sample = clusters(7)
    adapter = create_adapter(name).fit(*support(sample, [2] * 5))
    restored = create_adapter(name).load_state(adapter.state_dict())
    q, _ = queries(sample, 5)
    np.testing.assert_allclose(restored.predict_proba(q), adapter.predict_proba(q), atol=1e-6)
    assert restored.classes == adapter.classes


def _feature_cases():
    gen = np.random.default_rng(3)
    projected = {  # a trained-looking memory: 64-d → 16-d projections
        "key_proj.weight": gen.normal(size=(16, DIM)).astype(np.float32),
        "query_proj.weight": gen.normal(size=(16, DIM)).astype(np.float32),
        "log_scale": np.float32(2.0),
    }
    import torch

    state = {k: torch.as_tensor(v) for k, v in projected.items()}
    cases = [(n, {}) for n in adapter_names()]
    cases += [("metric", {"distance": "euclidean"}), ("metric", {"triplet": True})]
    cases += [("memory", {"state": state})]
    return cases


@pytest.mark.parametrize(("method", "options"), _feature_cases())
def test_precomputed_query_features_give_the_same_probabilities(method, options):
    """What the session caches per image (``query_features``) changes nothing in the result."""
    sample = clusters(seed=4)
    x, y = support(sample, [3, 2, 4, 1, 3])
    adapter = create_adapter(method, **options).fit(x, y)
    q, _ = queries(sample, 30)
    kind = adapter.feature_kind()
    expected = adapter.predict_proba(q)
    if kind is None:
        assert method == "metric" and options.get("triplet")
        return
    features = adapter.query_features(q)
    assert features.shape[0] == len(q) and features.dtype == np.float32
    np.testing.assert_allclose(adapter.predict_proba(q, features), expected, atol=1e-5)
    # features of a few rows are the rows' features (no dependence on the other queries)
    np.testing.assert_allclose(adapter.query_features(q[7:9]), features[7:9], atol=1e-5)
    with pytest.raises(UsageError, match="features"):
        adapter.predict_proba(q, features[:-1])
