"""Friction removed (issue 13 part 6): classes named in place, "Add images…", labels-only export,
plain messages, Stop between small pieces of work, no layout shift."""

from __future__ import annotations

import csv
import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from fewshot_gui.core.types import Progress
from fewshot_gui.data.folder import IMAGE_EXTENSIONS
from fewshot_gui.ui import class_card
from tests.ui.conftest import run_labeling, setup_labeling

_setup, _run = setup_labeling, run_labeling


def test_a_new_class_is_named_in_place_and_reserved_names_are_refused(make_app, qtbot):
    app = make_app()
    app.window.show()
    app.window.classes.add_button.click()
    card = app.window.classes.cards[0]
    assert card.editing() and card.name_edit.text() == "class 1"
    card.name_edit.setText("Unknown")
    qtbot.keyClick(card.name_edit, Qt.Key.Key_Return)
    assert card.editing() and app.state.names() == ["class 1"]
    assert card.name_problem.isVisibleTo(card) and "reserved" in card.name_problem.text()
    card.name_edit.setText("roses")
    qtbot.keyClick(card.name_edit, Qt.Key.Key_Return)
    assert app.state.names() == ["roses"]
    app.window.classes.add_button.click()
    second = app.window.classes.card("class 2")
    second.name_edit.setText("roses")
    qtbot.keyClick(second.name_edit, Qt.Key.Key_Return)
    assert "exists already" in second.name_problem.text()
    qtbot.keyClick(second.name_edit, Qt.Key.Key_Escape)
    assert not second.editing() and app.state.names() == ["roses", "class 2"]
    app.rename_class("roses", "unknown")  # any other way in is refused too
    assert app.state.names() == ["roses", "class 2"]
    assert "reserved" in app.window.messages.label.text()
    assert app.add_class("UNKNOWN") == "" and app.state.names() == ["roses", "class 2"]


def test_add_images_button_takes_image_files_of_every_known_extension(
    make_app, colour_images, monkeypatch, tmp_path
):
    support, _ = colour_images
    app = make_app()
    app.add_class("red")
    card = app.window.classes.card("red")
    filters = []

    def choose(_parent, _title, _folder, file_filter):
        filters.append(file_filter)
        return [*support["red"], str(tmp_path / "notes.txt")], ""

    monkeypatch.setattr(class_card.QFileDialog, "getOpenFileNames", choose)
    card.add_images_button.click()
    assert app.state.find("red").examples == support["red"]
    for extension in IMAGE_EXTENSIONS:
        assert f"*{extension}" in filters[0] and f"*{extension.upper()}" in filters[0]
    app.window.undo_stack.undo()
    assert app.state.find("red").examples == []


def test_labels_only_export_writes_csv_and_json_with_escaped_class_names(
    make_app, qtbot, colour_images, tmp_path
):
    support, truth = colour_images
    app = make_app()
    _setup(app, support, tmp_path / "folder")
    assert _run(qtbot, app) == "done"
    app.rename_class("red", "=SUM(A1)")
    first = next(p for p, c in truth.items() if c == "blue")
    with qtbot.waitSignal(app.predictionsShown, timeout=5000):
        app.label_paths([first], "=SUM(A1)")
    assert app.export_labels(str(tmp_path / "out" / "labels"))  # .csv added
    with open(tmp_path / "out" / "labels.csv", encoding="utf-8", newline="") as handle:
        rows = {r["path"]: r for r in csv.DictReader(handle)}
    assert set(rows) == set(truth)
    assert rows[first]["label"] == "'=SUM(A1)" and rows[first]["source"] == "user"
    red = [p for p, c in truth.items() if c == "red"]
    assert all(rows[p]["label"] == "'=SUM(A1)" and rows[p]["source"] == "model" for p in red)
    assert app.export_labels(str(tmp_path / "out" / "labels.json"))
    data = {r["path"]: r for r in json.loads((tmp_path / "out" / "labels.json").read_text())}
    assert data[first]["label"] == "=SUM(A1)" and data[first]["source"] == "user"
    assert "Wrote the labels of" in app.window.messages.label.text()


def test_an_empty_folder_says_so(make_app, qtbot, colour_images, tmp_path):
    support, _ = colour_images
    app = make_app()
    (tmp_path / "empty").mkdir()
    _setup(app, support, tmp_path / "empty")
    assert _run(qtbot, app) == "done"
    assert "No images found in" in app.window.status.text()
    assert "No images found in" in app.window.messages.label.text()
    assert "Correct any label" not in app.window.status.text()


def test_failed_files_are_listed_per_folder_and_not_counted_as_labeled(
    make_app, qtbot, colour_images, tmp_path
):
    support, truth = colour_images
    (tmp_path / "folder" / "broken.png").write_bytes(b"not an image")
    app = make_app()
    _setup(app, support, tmp_path / "folder")
    assert _run(qtbot, app) == "done"
    assert app.window.failed.count() == 1
    status = app.window.status.text()
    assert f"Labeled {len(truth)} images" in status and "1 could not be read" in status
    (tmp_path / "other").mkdir()
    app.window.controls.folder.setText(str(tmp_path / "other"))
    app.window.controls.folder.editingFinished.emit()
    assert app.window.failed.count() == 0


class SlowBatchSession:
    """Stands in for a session whose batch takes long: it checks ``should_stop`` (set by the
    worker) between small pieces, as the real session does on the CPU."""

    def __init__(self, base) -> None:
        self.base, self.should_stop = base, None
        self.in_batch, self.stopped_inside = threading.Event(), False
        self.device_name = "FakeDevice"

    def __getattr__(self, name):
        return getattr(self.base, name)

    def label(self, folder, cached_only=False):
        from fewshot_gui.session import StopRequested

        yield Progress(0, 10, "labeling")
        self.in_batch.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # one long batch, in small pieces
            if self.should_stop is not None and self.should_stop():
                self.stopped_inside = True
                raise StopRequested
            time.sleep(0.002)
        yield Progress(10, 10, "labeling")


def test_stop_ends_a_job_in_the_middle_of_a_batch(make_app, qtbot, colour_images, tmp_path):
    from tests.ui.conftest import FakeSession

    sessions = []

    def factory(settings):
        sessions.append(SlowBatchSession(FakeSession(settings)))
        return sessions[-1]

    support, _ = colour_images
    app = make_app(factory=factory)
    _setup(app, support, tmp_path / "folder")
    app.start()
    qtbot.waitUntil(lambda: bool(sessions) and sessions[-1].in_batch.is_set(), timeout=10000)
    # the window hears of the job through a queued signal: a user can press Stop once it shows
    qtbot.waitUntil(app.window.controls.stop_button.isEnabled, timeout=10000)
    with qtbot.waitSignal(app.jobDone, timeout=10000) as done:
        app.window.controls.stop_button.click()
        assert app.window.controls.start_button.isEnabled()  # the window answers at once
        assert app.window.status.text() == "Stopping…"
    assert done.args[1] == "cancelled" and sessions[-1].stopped_inside
    assert app.window.controls.start_button.isEnabled()


def test_the_session_checks_for_stop_between_pieces_of_a_cpu_batch():
    from fewshot_gui.session import STOP_CHUNK, LabelingSession, StopRequested

    session = LabelingSession.__new__(LabelingSession)
    session._plan = SimpleNamespace(device=SimpleNamespace(type="cpu"))
    pieces = []
    session._forward = lambda images: pieces.append(len(images)) or np.zeros((len(images), 2))
    session.should_stop = None
    assert session._forward_stoppable(np.zeros((32, 3))).shape == (32, 2)
    assert pieces == [32]  # no Stop to watch: one call
    pieces.clear()
    session.should_stop = lambda: len(pieces) >= 2
    with pytest.raises(StopRequested):
        session._forward_stoppable(np.zeros((32, 3)))
    assert pieces == [STOP_CHUNK, STOP_CHUNK]


def test_auto_says_what_it_chose_in_plain_words_and_nothing_moves(make_app, qtbot):
    app = make_app()
    app.window.show()
    qtbot.waitExposed(app.window)
    controls = app.window.controls
    QApplication.processEvents()
    before = controls.start_button.mapTo(app.window, controls.start_button.rect().topLeft())
    details = "auto → anil (5-fold accuracy: metric 0.83, memory 0.80, anil 0.91)"
    controls.set_method_info(details)
    QApplication.processEvents()
    after = controls.start_button.mapTo(app.window, controls.start_button.rect().topLeft())
    assert controls.method_info.text() == (
        "auto chose anil: it was the most accurate on your own examples"
    )
    assert controls.method_info.toolTip() == details
    assert after == before
    app.show_error("a message for the user")  # shown below the panels: nothing moves
    QApplication.processEvents()
    moved = controls.start_button.mapTo(app.window, controls.start_button.rect().topLeft())
    assert app.window.messages.isVisible() and moved == before
    controls.set_method_info(details, "auto kept metric: not enough examples to compare")
    assert controls.method_info.text() == "auto kept metric: not enough examples to compare"


def test_the_embedding_view_does_not_take_room_from_the_grid(make_app, qtbot):
    app = make_app()
    app.window.show()
    qtbot.waitExposed(app.window)
    QApplication.processEvents()
    grid_width = app.window.grid.width()
    app.window.ensure_plot()
    QApplication.processEvents()
    assert app.window.grid.width() == grid_width
