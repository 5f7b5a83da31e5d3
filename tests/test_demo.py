"""The demo is honest: drawings that show their class, accuracy counted against the true classes,
and a review that corrects like a user (issue 13 part 7). No Qt, no model: a fake session."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fewshot_gui.commands.demo import review
from fewshot_gui.core.types import Predictions
from fewshot_gui.data.demo import (
    CLASSES,
    MIN_CONTRAST,
    accuracy_line,
    demo_truth,
    ensure_demo,
)


def test_every_drawing_shows_its_pattern_and_the_truth_is_found_from_the_folder(tmp_path):
    demo = ensure_demo(tmp_path / "d", examples_per_class=1, unlabeled_per_class=4)
    for path in demo.truth:
        gray = np.asarray(Image.open(path).convert("L"), np.float32)
        spread = np.percentile(gray, 95) - np.percentile(gray, 5)
        assert spread >= MIN_CONTRAST * 0.5, path  # a pattern, not a flat colour
    assert demo_truth(demo.unlabeled) == demo.truth
    assert set(demo.truth.values()) == set(CLASSES)
    assert demo_truth(tmp_path) is None and demo_truth(demo.root / "examples") is None


def test_the_accuracy_line_counts_against_the_truth():
    truth = {"a": "x", "b": "y", "c": "y"}
    assert accuracy_line(truth, {"a": "x", "b": "y", "c": "y"}).startswith("Demo: all 3 labels")
    line = accuracy_line(truth, {"a": "x", "b": "x", "c": None})
    assert line.startswith("Demo: 1 of 3 labels are right (33%")


class FakeSession:
    """Nearest-mean labels over 1-d points; ``add_example`` moves the class means."""

    def __init__(self, points: dict[str, float], examples: dict[str, list[float]]) -> None:
        self.points, self.examples = points, {k: list(v) for k, v in examples.items()}

    def predictions(self) -> Predictions:
        classes = sorted(self.examples)
        means = np.array([np.mean(self.examples[c]) for c in classes])
        x = np.array([self.points[p] for p in self.points])
        logits = -((x[:, None] - means[None]) ** 2) * 4
        probs = np.exp(logits - logits.max(1, keepdims=True))
        return Predictions.from_probabilities(
            list(self.points), classes, probs / probs.sum(1, keepdims=True)
        )

    def add_example(self, path: str, label: str, *, reviewed: bool = False) -> Predictions:
        assert reviewed  # the demo's review gives review labels, as the app's keys do
        self.examples[label].append(self.points[path])
        return self.predictions()


def test_review_corrects_the_least_confident_wrong_labels_like_a_user():
    points = {f"x{i}": v for i, v in enumerate([0.0, 0.1, 0.15, 0.52, 0.9, 1.0])}
    truth = {"x0": "a", "x1": "a", "x2": "a", "x3": "a", "x4": "b", "x5": "b"}
    session = FakeSession(points, {"a": [0.0], "b": [1.0]})
    before = session.predictions()
    wrong = sum(lab != truth[p] for p, lab in zip(before.paths, before.labels, strict=True))
    assert wrong == 1  # x3 at 0.52 is nearer b, and the least confident
    done = review(session, truth, corrections=2)
    assert done.corrected == 1 and done.right == 6 and done.checked == len(points)
    done = review(FakeSession(points, {"a": [0.0], "b": [1.0]}), truth, corrections=1)
    assert done.corrected == 1 and done.right == 6 and done.checked == 1
