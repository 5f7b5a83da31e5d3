"""The review loop on the Qt-free review model: frozen order, next image, what changed, filters,
plot ↔ grid map and export rows. No Qt is imported here (checked in a fresh interpreter too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from fewshot_gui.core.types import FileFailure, Predictions
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.review import ReviewModel

CLASSES = ["a", "b", "c"]


def _paths(n: int) -> list[str]:
    return [f"/img/{i:03d}.jpg" for i in range(n)]


def _predict(paths: list[str], labels: list[str], conf: list[float]) -> Predictions:
    probs = np.zeros((len(paths), len(CLASSES)), np.float32)
    for i, (lab, c) in enumerate(zip(labels, conf, strict=True)):
        probs[i] = (1 - c) / (len(CLASSES) - 1)
        probs[i, CLASSES.index(lab)] = c
    return Predictions.from_probabilities(paths, CLASSES, probs)


def _model(n: int = 8) -> tuple[ReviewModel, list[str], list[str], list[float]]:
    model = ReviewModel()
    for name in CLASSES:
        model.insert_class(ClassInfo(name, model.next_color()))
    paths = _paths(n)
    labels = [CLASSES[i % 3] for i in range(n)]
    conf = [0.4 + 0.05 * ((i * 5) % n) for i in range(n)]  # a permutation of confidences
    model.update_predictions(_predict(paths, labels, conf))
    return model, paths, labels, conf


def test_the_review_loop_runs_without_qt():
    """These tests, run in a fresh interpreter, load neither Qt nor torch."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import test_review_model as t\n"
        "t.test_sorted_view_freezes_while_reviewing_and_resorts_on_request()\n"
        "t.test_last_action_reports_the_labels_it_changed_and_filters_them()\n"
        "t.test_plot_points_map_to_images_both_ways_and_carry_colours()\n"
        "print([m for m in ('PySide6', 'shiboken6', 'torch', 'pyqtgraph') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sorted_view_freezes_while_reviewing_and_resorts_on_request():
    model, paths, labels, conf = _model()
    events = []
    model.order_changed.connect(lambda a, b: events.append((a, b)))
    model.set_view("all", sort="confidence")
    assert [conf[i] for i in model.order] == sorted(conf)  # least confident first
    first = model.order.copy()
    wrong = int(first[0])
    model.set_corrections({paths[wrong]: "c" if labels[wrong] != "c" else "a"})
    assert model.frozen and np.array_equal(model.order, first)  # the corrected one stays put
    # the re-label after the correction moves confidences: the order still does not move
    new_conf = conf[::-1]
    model.expect_relabel()
    model.update_predictions(_predict(paths, labels, new_conf))
    assert np.array_equal(model.order, first) and model.stale
    # Enter / keys go to the next image the user has not labeled, wrapping at the end
    assert model.next_unreviewed(0) == 1
    model.set_corrections({paths[int(first[1])]: labels[int(first[1])]})
    assert model.next_unreviewed(0) == 2
    assert model.next_unreviewed(len(first) - 1) == 2
    model.resort()
    assert not model.frozen and not model.stale
    ordered = [new_conf[i] for i in model.order[:-2]]
    assert ordered == sorted(ordered)
    assert set(model.order[-2:].tolist()) == {int(first[0]), int(first[1])}  # reviewed go last
    assert events[-1] == (-1, -1)


def test_streamed_images_join_a_frozen_view_at_the_end():
    model, paths, _labels, _conf = _model()
    model.set_view("all", sort="confidence")
    model.set_corrections({paths[0]: "b"})
    before = model.order.copy()
    appended = []
    model.order_about_to_change.connect(lambda a, b: appended.append((a, b)))
    more = [f"/img/new{i}.jpg" for i in range(3)]
    model.update_predictions(_predict(more, ["a", "a", "b"], [0.9, 0.5, 0.7]))
    assert np.array_equal(model.order[: len(before)], before)
    assert [model.paths[i] for i in model.order[len(before) :]] == [more[1], more[2], more[0]]
    assert appended == [(len(before), len(before) + 2)]


def test_last_action_reports_the_labels_it_changed_and_filters_them():
    model, paths, labels, conf = _model()
    target = paths[0]
    model.set_corrections({target: "b"})
    model.expect_relabel()
    flipped = list(labels)
    flipped[0], flipped[3], flipped[5] = "b", "b", "a"  # the re-label moves two other images
    assert model.last_changed.size == 0  # not before the re-label arrived
    model.update_predictions(_predict(paths, flipped, conf))
    changed = sorted(model.last_changed.tolist())
    assert changed == sorted(i for i in (3, 5) if labels[i] != flipped[i])
    counts = model.counts()
    assert (counts.reviewed, counts.remaining, counts.changed) == (1, 7, len(changed))
    model.set_view("changed")
    assert sorted(model.order.tolist()) == changed
    # an action with no session to re-label finishes at once: nothing else changed
    model.set_corrections({paths[1]: "a"})
    model.finish_action()
    assert model.counts().changed == 0


def test_filters_use_the_label_shown_and_selection_only_keeps_the_selection():
    model, paths, labels, _ = _model()
    model.set_corrections({paths[0]: "c"})
    model.set_view("class", "c")
    shown = {model.paths[i] for i in model.order}
    assert paths[0] in shown and shown == {
        p for p, lab in zip(paths, labels, strict=False) if lab == "c"
    } | {paths[0]}
    model.set_view("corrected")
    assert model.order.tolist() == [0]
    model.select([2, 5, 6], source="plot")
    model.show_selection_only()
    assert model.order.tolist() == [2, 5, 6]
    model.select([5], source="grid")  # clicking inside the filtered view does not shrink it
    model.resort()
    assert model.order.tolist() == [2, 5, 6]


def test_plot_points_map_to_images_both_ways_and_carry_colours():
    model, paths, labels, _ = _model()
    points = [paths[5], paths[1], "/elsewhere.jpg", paths[0]]
    model.set_points(points)
    assert model.point_base.tolist() == [5, 1, -1, 0]
    assert model.base_of_points([0, 2, 3]).tolist() == [5, 0]
    assert model.points_of_base([0, 1]).tolist() == [1, 3]
    model.set_corrections({paths[1]: "c"})
    color, star = model.point_colors()
    assert color.tolist() == [CLASSES.index(labels[5]), 2, -1, CLASSES.index(labels[0])]
    assert star.tolist() == [False, True, False, False]
    more = [f"/img/new{i}.jpg" for i in range(2)]
    model.set_points([*points, *more])  # the folder grew: known points keep their images
    assert model.point_base.tolist() == [5, 1, -1, 0, -1, -1]
    model.update_predictions(_predict(more, ["a", "b"], [0.9, 0.9]))
    assert model.point_base.tolist() == [5, 1, -1, 0, 8, 9]  # found once predicted
    model.clear()  # another folder: the points go too, until it is embedded
    assert model.point_paths == [] and len(model.point_base) == 0


def test_export_rows_say_who_labeled_each_image():
    model, paths, labels, conf = _model(4)
    model.set_corrections({paths[0]: "c"})
    model.add_examples("b", [paths[1]])  # an image of the folder added as an example
    model.add_failures([FileFailure("/img/broken.jpg", "not an image file")])
    rows = {r.path: (r.label, r.source) for r in model.label_rows()}
    assert rows == {
        paths[0]: ("c", "user"),
        paths[1]: ("b", "user"),
        paths[2]: (labels[2], "model"),
        paths[3]: (labels[3], "model"),
    }
    assert model.describe(0) == "c (your label)"
    assert model.describe(2) == f"{labels[2]} · {conf[2]:.0%}"
