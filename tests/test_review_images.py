"""The review model's image table: a re-label merged with whole-array numpy gives exactly what
the images show, whichever way its rows are found (the first images in order, the same paths as
the previous re-label, a mix of known and new images), and a table filled in a thread equals one
merged batch by batch. No Qt."""

from __future__ import annotations

import numpy as np

from fewshot_gui.core.types import UNKNOWN, FileFailure, Predictions
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.review import ImageTable, ReviewModel
from fewshot_gui.review import images as images_module

CLASSES = ["a", "b", "c"]


def _predictions(paths: list[str], seed: int, unknown_above: float = 0.9) -> Predictions:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(CLASSES)), len(paths)).astype(np.float32)
    scores = rng.random(len(paths)).astype(np.float32)
    return Predictions.from_probabilities(list(paths), CLASSES, probs, unknown_above, scores)


def _shown(table: ImageTable, predictions: Predictions) -> None:
    """Every image of ``predictions`` shows its label, confidence and score in ``table``."""
    rows = [table.index_of[p] for p in predictions.paths]
    assert [table.code_names[c] for c in table.codes[rows]] == predictions.labels
    assert np.array_equal(table.conf[rows], predictions.confidences)
    assert np.array_equal(table.unknown[rows], predictions.unknown_scores)


def test_a_relabel_is_merged_exactly_however_its_rows_are_found(monkeypatch) -> None:
    monkeypatch.setattr(images_module, "REMEMBER", 4)  # remember small merges too
    paths = [f"/img/{i:03d}.jpg" for i in range(12)]
    table = ImageTable()
    first = _predictions(paths[:10], 0)
    assert table.merge(first).tolist() == list(range(10))
    failed = [FileFailure(p, "not an image file") for p in paths[10:]]
    assert table.add_failures(failed).tolist() == [10, 11]
    assert UNKNOWN in first.labels  # the unknown label gets a code like a class
    _shown(table, first)
    # the first images in order, with the failures after them: a full re-label
    again = _predictions([str(p) for p in paths[:10]], 1)
    assert table.merge(again).tolist() == list(range(10))
    _shown(table, again)
    # the same paths once more (remembered), then another order of known and new images
    assert table.merge(_predictions(paths[:10], 2)).tolist() == list(range(10))
    mixed = [paths[11], "/img/new.jpg", paths[3], paths[0], "/img/new.jpg"]
    rows = table.merge(_predictions(mixed, 3))
    assert rows.tolist() == [11, 12, 3, 0, 12] and len(table) == 13
    assert table.codes[12] == table.code_of(table.code_names[table.codes[12]])
    assert 11 not in table.failed and table.failed == {10: "not an image file"}
    # a label that is no class still gets its own code
    odd = Predictions(paths[:2], CLASSES, np.full((2, 3), 1 / 3, np.float32), ["a", "other"])
    odd.confidences = np.full(2, 1 / 3, np.float32)
    table.merge(odd)
    assert [table.code_names[c] for c in table.codes[:2]] == ["a", "other"]


def test_a_table_filled_in_a_thread_equals_one_merged_batch_by_batch() -> None:
    paths = [f"/img/{i:04d}.jpg" for i in range(300)]
    predictions = _predictions(paths[:280], 4)
    failures = [FileFailure(p, "truncated") for p in paths[280:]]
    filled = ImageTable.filled(predictions, failures)
    merged = ImageTable()
    for start in range(0, 280, 70):
        merged.merge(_predictions(paths[start : start + 70], 4))
    merged.merge(predictions)
    merged.add_failures(failures)
    assert filled.paths == merged.paths and filled.index_of == merged.index_of
    assert filled.failed == merged.failed
    names = np.array(filled.code_names, object)[filled.codes[:280]]
    assert names.tolist() == np.array(merged.code_names, object)[merged.codes[:280]].tolist()
    assert np.array_equal(filled.conf, merged.conf)
    assert np.array_equal(filled.unknown, merged.unknown, equal_nan=True)
    # a path both predicted and failed: merged one after the other, as the window would
    twice = ImageTable.filled(predictions, [FileFailure(paths[5], "gone")])
    assert len(twice) == 280 and twice.failed == {5: "gone"}


def test_replacing_the_images_resets_the_view_once_and_keeps_user_labels() -> None:
    model = ReviewModel()
    for name in CLASSES:
        model.insert_class(ClassInfo(name, model.next_color()))
    paths = [f"/img/{i:03d}.jpg" for i in range(50)]
    model.set_corrections({paths[7]: "c"})
    model.set_points([paths[7], "/elsewhere.jpg", paths[1]])
    events: list[tuple[int, int]] = []
    model.order_changed.connect(lambda a, b: events.append((a, b)))
    model.set_view("all", sort="confidence")
    events.clear()
    predictions = _predictions(paths[:45], 5)
    model.replace_images(ImageTable.filled(predictions, [FileFailure(paths[45], "bad")]))
    assert events == [(-1, -1)] and not model.frozen
    assert model.order[-2:].tolist() == [7, 45]  # the user's label, then the failed file
    assert model.failed == {45: "bad"} and len(model.order) == 46
    assert model.label(7) == "c" and model.point_base.tolist() == [7, -1, 1]
    # a correction then a full re-label: exactly the labels it changed, the order frozen
    order = model.order.copy()
    model.set_corrections({paths[2]: "a"})
    model.expect_relabel()
    before = [model.label(i) for i in range(45)]
    relabel = _predictions(paths[:45], 6)
    model.update_predictions(relabel)
    after = [model.label(i) for i in range(45)]
    changed = [i for i in range(45) if before[i] != after[i] and i != 2]
    assert model.last_changed.tolist() == changed and np.array_equal(model.order, order)


def test_sort_by_name_follows_the_file_names_as_images_arrive_and_are_replaced() -> None:
    """Sorting by name uses ranks kept between sorts: new images and a replaced table re-rank."""
    model = ReviewModel()
    for name in CLASSES:
        model.insert_class(ClassInfo(name, model.next_color()))
    model.update_predictions(_predictions(["/b/Zeta.jpg", "/a/alpha.jpg", "/c/Mid.jpg"], 0))
    model.set_view("all", sort="name")
    assert [model.paths[i] for i in model.order] == ["/a/alpha.jpg", "/c/Mid.jpg", "/b/Zeta.jpg"]
    model.update_predictions(_predictions(["/d/beta.jpg"], 0))
    model.resort()
    names = [model.paths[i].rsplit("/", 1)[1] for i in model.order]
    assert names == ["alpha.jpg", "beta.jpg", "Mid.jpg", "Zeta.jpg"]
    model.replace_images(ImageTable.filled(_predictions(["/x/b.jpg", "/x/a.jpg"], 0)))
    model.resort()
    assert [model.paths[i] for i in model.order] == ["/x/a.jpg", "/x/b.jpg"]
