"""File ▸ Open labeling result: a cluster run's output in the app, corrected and exported."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("pytestqt")

from fewshot_gui.cluster.refine import refine_result
from fewshot_gui.cluster.result import LabelingResult
from fewshot_gui.cluster.shards import (
    ResultFolder,
    RunInfo,
    ShardWriter,
    failure_rows,
    rows_table,
)

CLASSES = ["moss", "fern", "lichen"]


def _write_result(root, per_class: int = 20, dim: int = 8):
    """A stored-embeddings result of three well-separated classes and two failed files."""
    rng = np.random.default_rng(1)
    centers = np.eye(len(CLASSES), dim) * 4
    support = [(f"/ex/{c}/{i}.jpg", c) for c in CLASSES for i in range(2)]
    vectors = np.repeat(centers, 2, axis=0) + rng.normal(scale=0.3, size=(len(support), dim))
    info = RunInfo(CLASSES, "conv4", "id", "metric", "metric", dim, True, "fp", support=support)
    folder = ResultFolder(root)
    folder.begin(info, vectors.astype(np.float16).astype(np.float32), None)
    truth = np.repeat(np.arange(len(CLASSES)), per_class)
    n = len(truth)
    columns = {
        "path": [f"/archive/{i:03d}.jpg" for i in range(n)],
        "label": [""] * n,
        "confidence": np.zeros(n),
        "unknown_score": np.full(n, np.nan),
        "error": [""] * n,
        "probabilities": np.zeros((n, len(CLASSES))),
        "embedding": centers[truth] + rng.normal(scale=0.5, size=(n, dim)),
    }
    writer = ShardWriter(folder, rows=25)
    writer.add(rows_table(columns, CLASSES, dim))
    writer.add(failure_rows(["/archive/bad1.jpg", "/archive/bad2.jpg"], ["empty file"] * 2,
                            CLASSES, dim))  # fmt: skip
    writer.flush()
    refine_result(root)  # the session's labels, as a cluster run's second pass writes them
    return LabelingResult.open(root)


@pytest.fixture
def app(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from fewshot_gui.app import AppController
    from fewshot_gui.ui.settings import AppSettings
    from fewshot_gui.workers.labeling import default_session_factory

    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    controller = AppController(default_session_factory, settings=settings, thumbnail_cache=None)
    controller.project.ask_unsaved = lambda: "discard"
    qtbot.addWidget(controller.window)
    yield controller
    controller.shutdown()


def test_open_a_result_correct_it_and_export(app, qtbot, tmp_path):
    from fewshot_gui.data.labels_csv import read_labels

    result = _write_result(tmp_path / "result")
    with qtbot.waitSignal(app.jobDone, timeout=120000) as done:
        with qtbot.waitSignal(app.results.opened, timeout=60000):
            assert app.results.open(str(tmp_path / "result"))  # read in a thread
        review = app.review  # every row is in the grid before the worker has done anything
        assert sorted(review.paths) == sorted(result.paths)
        assert sorted(review.failed) == sorted(
            review.index_of[p] for p in ("/archive/bad1.jpg", "/archive/bad2.jpg")
        )
    assert done.args[1] == "done", app.window.messages.label.text()
    assert app.state.review.names() == CLASSES
    stored = dict(zip(result.paths, result.labels, strict=True))
    for i, path in enumerate(review.paths):
        if i not in review.failed:
            assert review.predicted(i) == stored[path]
    target = next(p for p in review.paths if stored[p] == "moss")
    with qtbot.waitSignal(app.predictionsShown, timeout=60000):
        app.label_paths([target], "fern")  # a correction: re-labels from the stored embeddings
    assert review.label(review.index_of[target]) == "fern"
    assert app.export_labels(str(tmp_path / "labels.csv"))
    exported = {r.path: r for r in read_labels(tmp_path / "labels.csv").rows}  # the app's export
    assert len(exported) == len(result) - 2  # labeled rows; the failed files are not labels
    assert (exported[target].label, exported[target].source) == ("fern", "user")


def test_a_folder_that_is_not_a_result_is_one_message(app, tmp_path):
    (tmp_path / "photos").mkdir()
    assert not app.results.open(str(tmp_path / "photos"))
    assert "not a labeling result" in app.window.messages.label.text()
