"""The labeling session end to end on synthetic images with a small encoder (Conv-4, random)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from imagefactory import make_image

from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import Progress
from fewshot_gui.session import BatchResult, LabelingSession

COLORS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 40)}


def _dataset(root: Path, per_class: int = 14) -> tuple[dict[str, list[Path]], Path]:
    rng = np.random.default_rng(0)
    support, images = {}, root / "images"
    for name, color in COLORS.items():
        support[name] = [
            make_image(root / "support" / name / f"{i}.png", color=color) for i in range(2)
        ]
        for i in range(per_class):
            jitter = tuple(int(np.clip(c + rng.integers(-25, 25), 0, 255)) for c in color)
            make_image(images / f"{name}_{i:02d}.png", color=jitter, size=(60 + i, 50))
    return support, images


def _run(session: LabelingSession, support, images) -> list[object]:
    list(session.set_support(support))
    return list(session.label(images))


@pytest.fixture
def data(tmp_path):
    return _dataset(tmp_path)


def test_labels_a_folder_with_partial_results_and_progress(tmp_path, data):
    support, images = data
    session = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    items = _run(session, support, images)
    batches = [i for i in items if isinstance(i, BatchResult)]
    progress = [i for i in items if isinstance(i, Progress)]
    assert len(batches) >= 2  # 42 images in batches of ≤ 32: predictions arrive as they are made
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1].done == progress[-1].total == 42
    predictions = session.predictions()
    assert len(predictions.paths) == 42
    assert predictions.probabilities.shape == (42, 3)
    np.testing.assert_allclose(predictions.probabilities.sum(1), 1, atol=1e-5)
    correct = [
        Path(p).name.startswith(lab)
        for p, lab in zip(predictions.paths, predictions.labels, strict=True)
    ]
    assert np.mean(correct) > 0.9
    assert isinstance(predictions.probabilities, np.ndarray)  # numpy out, never tensors


def test_second_run_embeds_nothing_and_changed_files_are_reembedded(tmp_path, data):
    support, images = data
    first = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    _run(first, support, images)
    assert first.embedded_count == 42 + 6
    second = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    _run(second, support, images)
    assert second.embedded_count == 0
    assert second.predictions().labels == first.predictions().labels
    changed = images / "red_00.png"
    make_image(changed, color=(30, 40, 220))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
    third = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    _run(third, support, images)
    assert third.embedded_count == 1
    index = third.predictions().paths.index(str(changed))
    old = first.predictions().probabilities[index]
    assert not np.allclose(third.predictions().probabilities[index], old)


def test_corrections_relabel_from_cached_embeddings(tmp_path, data):
    support, images = data
    session = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    _run(session, support, images)
    before = session.embedded_count
    # A new class from one correction: the image itself must now be labeled with it.
    target = str(images / "green_03.png")
    after = session.add_example(target, "lime")
    assert "lime" in after.classes
    assert after.labels[after.paths.index(target)] == "lime"
    assert session.embedded_count == before  # no model call: cached embeddings
    after = session.remove_example(target)
    assert "lime" not in after.classes
    with pytest.raises(UsageError):
        session.remove_example(target)


def test_cancel_by_closing_the_generator(tmp_path, data):
    support, images = data
    session = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    list(session.set_support(support))
    run = session.label(images)
    for item in run:
        if isinstance(item, BatchResult):
            break
    run.close()  # cancelling = not resuming
    assert 0 < len(session.predictions().paths) < 42


def test_unknown_threshold_and_unusable_support(tmp_path, data):
    support, images = data
    session = LabelingSession(
        encoder="conv4", device="cpu", cache_dir=tmp_path / "c", unknown_threshold=0.5
    )
    _run(session, support, images)
    got = session.predictions()
    assert len(got.unknown_scores) == len(got.paths)  # an unknown score for every image
    assert [lab == "unknown" for lab in got.labels] == (got.unknown_scores > 0.5).tolist()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    bad = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "c")
    with pytest.raises(UsageError, match="no class has a readable example"):
        list(bad.set_support({"a": [broken], "b": [tmp_path / "missing.png"]}))
    with pytest.raises(UsageError, match="unknown method"):
        LabelingSession(method="nope")


@pytest.mark.parametrize("method", ["metric", "memory", "anil", "auto"])
def test_cached_query_features_follow_changed_files_and_corrections(tmp_path, data, method):
    """Predictions from the per-image cached features equal a computation from scratch, after a
    file changed in place (its row re-embedded in the same session) and after corrections."""
    support, images = data
    session = LabelingSession(  # the adapter's own predictions: no refinement on the folder
        encoder="conv4",
        method=method,
        device="cpu",
        cache_dir=tmp_path / "cache",
        transductive=False,
    )
    _run(session, support, images)
    changed = images / "red_01.png"
    old_paths, old_x = session.embeddings()
    old_row = old_x[old_paths.index(str(changed))].copy()
    make_image(changed, color=(30, 200, 40))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
    before = session.embedded_count
    list(session.label(images))
    assert session.embedded_count == before + 1
    new_paths, new_x = session.embeddings()
    assert not np.allclose(new_x[new_paths.index(str(changed))], old_row)  # its row, overwritten
    session.add_example(images / "blue_05.png", "blue")
    session.add_example(images / "green_07.png", "teal")  # a new class
    paths, x = session.embeddings()
    expected = session._adapter.predict_proba(x)  # features computed afresh, not from the cache
    got = session.predictions()
    assert got.paths == paths
    np.testing.assert_allclose(got.probabilities, expected, atol=1e-5)


def test_dense_rows_are_predicted_over_their_span_and_picked():
    """Re-labeling predicts a dense set of rows over the table span they fill (a view, no copy of
    every embedding) and picks them: the same result as gathering them first."""

    from fewshot_gui.session.prediction import _as_span

    rows = np.array([0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21])
    span, take = _as_span(rows)
    assert span == slice(0, 22) and np.array_equal(np.arange(22)[take], rows)
    sparse = np.array([3, 40, 90])
    assert _as_span(sparse)[0] is sparse and _as_span(sparse)[1] is None
    assert _as_span(slice(2, 9)) == (slice(2, 9), None)


def test_examples_inside_the_folder_do_not_change_the_labels(tmp_path, data):
    """The folder's own images as examples leave gaps in its table rows (they were embedded
    first); predictions over the span equal predictions of each image alone."""

    _, folder = data
    session = LabelingSession(encoder="conv4", device="cpu", cache_dir=tmp_path / "cache")
    images = sorted(str(p) for p in folder.rglob("*.png"))
    inside = {"a": images[:2], "b": images[5:7]}
    list(session.set_support(inside))
    list(session.label(folder))
    whole = session.predictions()
    alone = [session._predict([p]) for p in whole.paths[:6]]
    np.testing.assert_allclose(
        whole.probabilities[:6], np.concatenate([a.probabilities for a in alone]), atol=1e-5
    )
