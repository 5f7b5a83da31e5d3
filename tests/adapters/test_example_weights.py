"""Review labels weigh less than the examples a user gave: per-example weights follow the
support set through fit, add and remove, the metric family's prototypes use them, ``auto``
passes them to the method it chose, and the session gives them to review labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_gui.adapters.base import REVIEWED_WEIGHT
from fewshot_gui.adapters.registry import create_adapter
from fewshot_gui.core.errors import UsageError


def _points(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(6, 16)).astype(np.float32)


def test_metric_prototypes_are_weighted_means_and_weights_follow_the_examples():
    x = _points()
    labels = ["a", "a", "b", "b", "a", "b"]
    weights = [1, 1, 1, 1, 0.25, 0.25]
    adapter = create_adapter("metric").fit(x, labels, weights)
    z = adapter._features(torch.from_numpy(x))
    want_a = (z[0] + z[1] + 0.25 * z[4]) / 2.25
    torch.testing.assert_close(adapter._protos[0], want_a)
    plain = create_adapter("metric").fit(x, labels)
    assert not torch.allclose(plain._protos[0], adapter._protos[0])

    added = create_adapter("metric").fit(x[:4], labels[:4])
    added.add_example(x[4], "a", 0.25)
    added.add_example(x[5], "b", 0.25)
    torch.testing.assert_close(added._protos, adapter._protos)
    added.remove_example(0)  # the weights stay with their examples
    assert added.example_weights.tolist() == [1, 1, 1, 0.25, 0.25]
    again = create_adapter("metric").fit(x[1:], labels[1:], weights[1:])
    torch.testing.assert_close(added._protos, again._protos)
    with pytest.raises(UsageError):
        create_adapter("metric").fit(x, labels, [1.0] * 5)


def test_auto_passes_the_weights_to_the_method_it_chose():
    x = _points(1)
    labels = ["a", "b", "a", "b", "a", "b"]
    auto = create_adapter("auto").fit(x, labels, [1, 1, 1, 1, REVIEWED_WEIGHT, 1])
    assert auto._adapter.example_weights.tolist() == [1, 1, 1, 1, REVIEWED_WEIGHT, 1]
    auto.add_example(x[0] + 0.1, "a", REVIEWED_WEIGHT)
    assert auto._adapter.example_weights[-1] == REVIEWED_WEIGHT


def test_session_review_labels_get_the_review_weight(tmp_path):
    from imagefactory import make_image

    from fewshot_gui.session import LabelingSession

    support = {
        name: [make_image(tmp_path / "s" / name / f"{i}.png", color=c) for i in range(2)]
        for name, c in (("red", (220, 30, 30)), ("blue", (30, 30, 220)))
    }
    folder = tmp_path / "folder"
    for i in range(4):
        make_image(folder / f"r{i}.png", color=(200 + 10 * i, 40, 40))
    session = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    list(session.set_support(support))
    list(session.label(folder))
    session.add_example(folder / "r0.png", "red", reviewed=True)
    session.add_example(folder / "r1.png", "red")
    assert session._adapter.example_weights.tolist() == [1, 1, 1, 1, REVIEWED_WEIGHT, 1]
    session.remove_example(folder / "r0.png")
    assert session._adapter.example_weights.tolist() == [1, 1, 1, 1, 1]
    # a new support set keeps which of its images are review labels
    list(
        session.set_support(
            {**support, "red": [*support["red"], folder / "r2.png"]}, reviewed=[folder / "r2.png"]
        )
    )
    assert session._adapter.example_weights.tolist() == [1, 1, REVIEWED_WEIGHT, 1, 1]
