"""The app with the labeling worker: drop examples, label, correct, cancel, stay responsive."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent

from fewshot_gui.core.types import UNKNOWN
from tests.ui.conftest import run_labeling, setup_labeling

_setup, _run = setup_labeling, run_labeling


def test_dropping_files_on_a_class_adds_examples_and_undo_removes_them(
    make_app, qtbot, colour_images
):
    app = make_app()
    support, _ = colour_images
    app.add_class("red")
    app.add_class("blue")
    card = app.window.classes.card("blue")
    mime = QMimeData()
    mime.setUrls(
        [QUrl.fromLocalFile(p) for p in support["blue"]] + [QUrl.fromLocalFile("/tmp/notes.txt")]
    )
    event = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    card.dropEvent(event)
    assert app.state.find("blue").examples == support["blue"]  # the .txt is not an image
    assert app.window.classes.card("blue").strip.count() == 2
    app.window.undo_stack.undo()
    assert app.state.find("blue").examples == []
    app.window.undo_stack.redo()
    assert app.state.find("blue").examples == support["blue"]


def test_full_run_labels_every_image_and_lists_failures(make_app, qtbot, colour_images, tmp_path):
    app = make_app()
    support, truth = colour_images
    (tmp_path / "folder" / "broken.png").write_bytes(b"not an image")
    _setup(app, support, tmp_path / "folder")
    assert _run(qtbot, app) == "done"
    model = app.window.grid.model
    labels = {p: model.label(i) for i, p in enumerate(model.paths) if i not in model.failed}
    assert labels == truth
    assert app.window.failed.count() == 1
    assert app.window.controls.device.text() == "device: FakeDevice"
    app.window.grid.set_filter("failed")
    assert model.rowCount() == 1 and model.data(model.index(0), Qt.ItemDataRole.DisplayRole) == (
        "broken.png"
    )


def test_correction_joins_support_relabels_and_undo_reverts(
    make_app, qtbot, colour_images, tmp_path
):
    app = make_app()
    support, truth = colour_images
    _setup(app, support, tmp_path / "folder")
    _run(qtbot, app)
    grid, model = app.window.grid, app.window.grid.model
    target = next(p for p, c in truth.items() if c == "green")
    grid.select_base([model.index_of[target]])
    grid.view.setFocus()
    with qtbot.waitSignal(app.predictionsShown, timeout=3000):
        qtbot.keyClick(grid.view, Qt.Key.Key_1)  # key 1 = first class ("red")
    session = app.sessions[-1]
    assert ("add", target, "red") in session.calls
    assert app.state.corrections == {target: "red"}
    assert model.label(model.index_of[target]) == "red"
    with qtbot.waitSignal(app.predictionsShown, timeout=3000):
        app.window.undo_stack.undo()
    assert ("remove", target) in session.calls and app.state.corrections == {}
    assert model.label(model.index_of[target]) == "green"


def test_enter_accepts_the_prediction_and_selects_the_next_image(
    make_app, qtbot, colour_images, tmp_path
):
    app = make_app()
    support, _ = colour_images
    _setup(app, support, tmp_path / "folder")
    _run(qtbot, app)
    grid, model = app.window.grid, app.window.grid.model
    grid.select_base([0])
    grid.view.setCurrentIndex(grid.index(0))
    qtbot.keyClick(grid.view, Qt.Key.Key_Return)
    assert app.state.corrections == {model.paths[0]: model.predicted(0)}
    assert grid.view.currentIndex().row() == 1
    assert grid.selected_base().tolist() == [int(model.order[1])]


def test_cancel_mid_run_stops_and_closes_the_generator(make_app, qtbot, colour_images, tmp_path):
    app = make_app(delay=0.05, batch=1)
    support, truth = colour_images
    _setup(app, support, tmp_path / "folder")
    with qtbot.waitSignal(app.predictionsShown, timeout=5000):
        app.start()
    started = time.perf_counter()
    with qtbot.waitSignal(app.jobDone, timeout=2000) as blocker:
        app.stop()
    assert blocker.args[1] == "cancelled"
    assert time.perf_counter() - started < 1.0
    assert len(app.window.grid.model.paths) < len(truth)
    assert app.sessions[-1].closed_jobs == 1
    assert app.window.controls.start_button.isEnabled()


def test_a_new_job_cancels_the_old_one(make_app, qtbot, colour_images, tmp_path):
    app = make_app(delay=0.05, batch=1)
    support, truth = colour_images
    _setup(app, support, tmp_path / "folder")
    finished = []
    app.jobDone.connect(lambda job, status: finished.append((job, status)))
    with qtbot.waitSignal(app.predictionsShown, timeout=5000):
        app.start()
    app.start()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=10000)
    assert [s for _, s in finished] == ["cancelled", "done"]
    assert len(app.window.grid.model.paths) == len(truth)


def test_bad_folder_gives_a_message_not_a_crash(make_app, qtbot, colour_images, tmp_path):
    app = make_app()
    support, _ = colour_images
    _setup(app, support, tmp_path / "does not exist")
    assert not app.start()
    assert "Choose a folder" in app.window.messages.label.text()
    app2 = make_app()
    app2.window.controls.folder.setText(str(tmp_path))
    assert not app2.start()
    assert "example" in app2.window.messages.label.text()


def test_engine_error_reaches_the_window_as_a_plain_message(
    make_app, qtbot, colour_images, tmp_path
):
    from fewshot_gui.core.errors import UsageError

    def broken(_settings):
        raise UsageError("encoder 'nope' is not available offline")

    app = make_app(factory=broken)
    support, _ = colour_images
    _setup(app, support, tmp_path / "folder")
    assert _run(qtbot, app) == "failed"
    assert app.window.messages.label.text() == "encoder 'nope' is not available offline"


def test_gui_thread_stays_responsive_while_labeling(make_app, qtbot, colour_images, tmp_path):
    app = make_app(delay=0.01, batch=2)
    support, _ = colour_images
    _setup(app, support, tmp_path / "folder")
    beats = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start()
    _run(qtbot, app)
    timer.stop()
    gaps = np.diff(beats)
    assert len(gaps) > 5 and gaps.max() < 0.25, gaps.max()


def test_rename_and_delete_class_refit_the_session(make_app, qtbot, colour_images, tmp_path):
    app = make_app()
    support, _ = colour_images
    _setup(app, support, tmp_path / "folder")
    _run(qtbot, app)
    with qtbot.waitSignal(app.jobDone, timeout=3000):
        app.rename_class("blue", "navy")
    assert app.sessions[-1].calls[-1][0] == "set_support"
    assert "navy" in app.sessions[-1].calls[-1][1]
    assert "navy" in set(
        app.window.grid.model.label(i) for i in range(len(app.window.grid.model.paths))
    )
    with qtbot.waitSignal(app.jobDone, timeout=3000):
        app.push(
            __import__("fewshot_gui.ui.commands", fromlist=["x"]).DeleteClass(app.state, "navy")
        )
    labels = {app.window.grid.model.label(i) for i in range(len(app.window.grid.model.paths))}
    assert labels <= {"red", "green", UNKNOWN}


def test_project_round_trip_through_the_app(make_app, qtbot, colour_images, tmp_path):
    app = make_app()
    support, truth = colour_images
    _setup(app, support, tmp_path / "folder")
    app.state.set_color("red", "#123456")
    app.state.set_corrections({next(iter(truth)): "blue"})
    assert app.save_as(str(tmp_path / "proj"))
    other = make_app()
    assert other.open_project(str(tmp_path / "proj.fewshot"))
    assert other.state.find("red").color == "#123456"
    assert other.state.support() == app.state.support()
    assert other.window.controls.settings()["folder"] == str(tmp_path / "folder")
    assert str(tmp_path / "proj.fewshot") in other.settings.recent_projects()
    (tmp_path / "future.fewshot").write_text('{"format": "fewshot-gui-project", "version": 99}')
    assert not other.open_project(str(tmp_path / "future.fewshot"))
    assert "newer" in other.window.messages.label.text()
    assert other.state.names() == app.state.names()  # the open project is kept


def test_export_and_undo_from_the_app(make_app, qtbot, colour_images, tmp_path):
    app = make_app()
    support, truth = colour_images
    _setup(app, support, tmp_path / "folder")
    _run(qtbot, app)
    dest = tmp_path / "sorted"
    with qtbot.waitSignal(app.exporter.finished, timeout=5000):
        app.export(str(dest), "move")
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == ["blue", "green", "red"]
    assert not any(__import__("os").path.exists(p) for p in truth)
    assert (dest / "labels.csv").exists()
    with qtbot.waitSignal(app.exporter.finished, timeout=5000):
        app.undo_export(str(dest))
    assert all(__import__("os").path.exists(p) for p in truth)
    assert "Undid the export of 18" in app.window.messages.label.text()


def test_grid_drag_carries_file_urls(make_app, qtbot, colour_images, tmp_path):
    app = make_app()
    support, _ = colour_images
    _setup(app, support, tmp_path / "folder")
    _run(qtbot, app)
    model = app.window.grid.model
    mime = model.mimeData([model.index(0), model.index(1)])
    assert [u.toLocalFile() for u in mime.urls()] == model.paths[:2]
