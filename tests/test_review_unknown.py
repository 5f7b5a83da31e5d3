"""The review model finds clutter: a "likely unknown" filter and a "most unknown first" sort over
the unknown scores the session sends with its predictions (no Qt)."""

from __future__ import annotations

import numpy as np

from fewshot_gui.core.types import LIKELY_UNKNOWN, Predictions
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.review import FILTERS, SORTS, ReviewModel

CLASSES = ["a", "b"]


def _model() -> tuple[ReviewModel, list[str], np.ndarray]:
    model = ReviewModel()
    for name in CLASSES:
        model.insert_class(ClassInfo(name, model.next_color()))
    paths = [f"/img/{i:03d}.jpg" for i in range(6)]
    probs = np.tile([[0.8, 0.2]], (6, 1)).astype(np.float32)
    scores = np.array([0.1, 0.99, 0.5, 0.97, 0.3, 0.999], np.float32)
    model.update_predictions(
        Predictions.from_probabilities(paths, CLASSES, probs, unknown_scores=scores)
    )
    return model, paths, scores


def test_likely_unknown_filter_lists_clutter_and_skips_user_labels() -> None:
    model, paths, scores = _model()
    assert "likely_unknown" in FILTERS
    model.set_view("likely_unknown")
    assert sorted(model.order.tolist()) == np.flatnonzero(scores > LIKELY_UNKNOWN).tolist()
    model.set_corrections({paths[1]: "a"})  # the user says it is an "a" after all
    model.resort()
    assert model.order.tolist() == [3, 5]
    assert "likely unknown" in model.describe(5)
    assert "likely unknown" not in model.describe(0)


def test_most_unknown_first_sort_and_export_rows_carry_the_score() -> None:
    model, paths, scores = _model()
    assert SORTS["most unknown first"] == "unknown"
    model.set_view("all", sort="unknown")
    assert model.order.tolist() == [5, 1, 3, 2, 4, 0]
    rows = {r.path: r for r in model.label_rows()}
    assert rows[paths[5]].unknown_score == float(scores[5])


def test_predictions_without_scores_leave_the_filter_empty() -> None:
    model = ReviewModel()
    model.insert_class(ClassInfo("a", model.next_color()))
    probs = np.ones((3, 1), np.float32)
    model.update_predictions(Predictions.from_probabilities(["/x", "/y", "/z"], ["a"], probs))
    model.set_view("likely_unknown")
    assert len(model.order) == 0
    assert model.label_rows()[0].unknown_score is None
