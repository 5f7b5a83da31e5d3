"""The simulated review loop (fewshot_gui.review_sim) on scripted and synthetic labelers."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_gui.core.types import Predictions
from fewshot_gui.review_sim import ArrayLabeler, simulate_review


class Scripted:
    """A labeler whose predictions are given per action: ``script[k]`` is (labels, confidences)
    after ``k`` actions (the last one repeats); records what it was told."""

    def __init__(self, paths: list[str], classes: list[str], script: list[tuple[list, list]]):
        self.paths, self.classes, self.script = paths, classes, script
        self.told: list[tuple[str, str]] = []

    def predictions(self) -> Predictions:
        labels, conf = self.script[min(len(self.told), len(self.script) - 1)]
        probs = np.zeros((len(self.paths), len(self.classes)), np.float32)
        for i, (lab, c) in enumerate(zip(labels, conf, strict=True)):
            probs[i] = (1 - c) / (len(self.classes) - 1)
            probs[i, self.classes.index(lab)] = c
        return Predictions.from_probabilities(self.paths, self.classes, probs)

    def add_example(self, path: str, label: str, *, reviewed: bool = False) -> Predictions:
        assert reviewed  # the review labels what it sees: the labeler weighs it as such
        self.told.append((path, label))
        return self.predictions()


def test_least_confident_first_corrects_and_accepts_as_the_app_does():
    paths = ["a", "b", "c", "d"]
    truth = {"a": "x", "b": "y", "c": "x", "d": "y"}
    labels = ["x", "x", "x", "y"]  # b is wrong
    # b is the least confident, then d, then a; c is the most confident
    script = [(labels, [0.7, 0.55, 0.95, 0.6]), (["x", "y", "x", "y"], [0.8, 0.9, 0.95, 0.9])]
    labeler = Scripted(paths, ["x", "y"], script)
    result = simulate_review(labeler, truth)
    assert labeler.told == [("b", "y")]  # corrected with the true class; then the folder is clean
    assert result.initial_accuracy == 0.75 and result.accuracies == [1.0]
    assert result.reviews_to_clean == 1 and result.corrections == 1 and result.harmful_flips == 0


def test_frozen_order_is_walked_then_resorted_at_its_end():
    paths = ["a", "b", "c"]
    truth = {"a": "x", "b": "x", "c": "y"}
    # after the first action (accepting a) the confidences reverse; a frozen order keeps b next,
    # re-sorting each time goes to c
    before = (["x", "x", "x"], [0.5, 0.6, 0.9])  # c wrong but confident
    after = (["x", "x", "x"], [0.6, 0.9, 0.7])
    frozen = Scripted(paths, ["x", "y"], [before, after])
    simulate_review(frozen, truth, order="frozen")
    assert [p for p, _ in frozen.told] == ["a", "b", "c"]
    resort = Scripted(paths, ["x", "y"], [before, after])
    simulate_review(resort, truth, order="resort")
    assert [p for p, _ in resort.told] == ["a", "c"]


def test_falls_and_harmful_flips_are_measured_on_unreviewed_images_only():
    paths = ["a", "b", "c", "d"]
    truth = dict.fromkeys(paths, "x")
    script = [
        (["x", "x", "x", "y"], [0.9, 0.8, 0.7, 0.6]),  # 3/4 right
        (["y", "y", "x", "x"], [0.9, 0.8, 0.7, 0.6]),  # d corrected; a, b flip wrong: 2/4
        (["y", "y", "x", "x"], [0.9, 0.8, 0.7, 0.6]),
    ]
    result = simulate_review(Scripted(paths, ["x", "y"], script), truth, max_reviews=2)
    assert result.accuracies == [0.5, 0.5]  # then c is accepted (already right)
    assert result.harmful_flips == 2 and result.largest_fall == pytest.approx(0.25)
    assert result.lowest_accuracy == 0.5 and result.reviews_to_clean is None
    with pytest.raises(ValueError, match="order"):
        simulate_review(Scripted(paths, ["x", "y"], script), truth, order="random")


def clusters(seed: int, way: int = 5, n: int = 40, dim: int = 16):
    """A synthetic folder: ``way`` Gaussian classes of ``n`` images, one example each."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(way, dim)) * 1.2
    x = np.concatenate([c + rng.normal(size=(n, dim)) for c in centers]).astype(np.float32)
    truth = {f"img{i}": f"c{i // n}" for i in range(way * n)}
    support = {f"ex{c}": (centers[c] + rng.normal(size=dim), f"c{c}") for c in range(way)}
    return list(truth), x, truth, support


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_review_never_loses_more_than_two_points_in_one_action(seed):
    paths, x, truth, support = clusters(seed)
    labeler = ArrayLabeler("auto", paths, x, support, candidates="metric,memory,anil")
    result = simulate_review(labeler, truth, describe=lambda: labeler.method_description)
    assert result.initial_accuracy < 0.95  # there is something to review
    assert result.reviews_to_clean is not None
    assert result.largest_fall <= 0.02, result.accuracies
    assert all(m.startswith("auto → metric: ") for m in result.methods), result.methods
