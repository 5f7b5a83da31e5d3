"""Reviewing in the app: a frozen order, keys that move on, what a correction changed, drag onto a
class as a correction, examples only on request, and one-at-a-time review."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from conftest import FakeSession
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from fewshot_gui.core.types import Predictions


class FollowSession(FakeSession):
    """A correction pulls the three images nearest to it to its label (as a nearest-neighbour
    method would), so "what changed" has something to report."""

    pulled: ClassVar[dict[str, str]] = {}

    def add_example(self, path, label, *, reviewed=False) -> Predictions:
        x = self.vectors[str(path)] if str(path) in self.vectors else self._embed(str(path))
        others = [p for p in self.labeled if p != str(path)]
        d = [float(((self.vectors[p] - x) ** 2).sum()) for p in others]
        self.pulled = {others[k]: label for k in np.argsort(d)[:3]}
        return super().add_example(path, label, reviewed=reviewed)

    def _predict(self, paths: list[str]) -> Predictions:
        probs = super()._predict(paths).probabilities.copy()
        for k, p in enumerate(paths):
            if p in self.pulled:
                probs[k] = 0.1
                probs[k, self.classes.index(self.pulled[p])] = 0.8
        return Predictions.from_probabilities(paths, self.classes, probs)


def _labeled_app(make_app, qtbot, colour_images, tmp_path, session=FakeSession):
    made = []
    app = make_app(factory=lambda settings: made.append(session(settings)) or made[-1])
    app.sessions = made
    support, truth = colour_images
    for name in support:
        app.add_class(name)
    for name, paths in support.items():
        app.state.add_examples(name, paths)
    app.window.controls.folder.setText(str(tmp_path / "folder"))
    with qtbot.waitSignal(app.jobDone, timeout=10000):
        assert app.start()
    return app, truth


def test_keys_label_and_move_on_in_a_frozen_least_confident_order(
    make_app, qtbot, colour_images, tmp_path
):
    app, truth = _labeled_app(make_app, qtbot, colour_images, tmp_path, FollowSession)
    grid, review = app.window.grid, app.review
    grid.set_sort("least confident first")
    frozen = review.order.copy()
    grid.select_row(0)
    grid.view.setFocus()
    first = review.paths[int(frozen[0])]
    wrong = next(c for c in ("red", "green", "blue") if c != truth[first])
    key = Qt.Key(int(Qt.Key.Key_1) + app.state.names().index(wrong))
    with qtbot.waitSignal(app.predictionsShown, timeout=3000):  # the re-label after it
        qtbot.keyClick(grid.view, key)
    assert app.state.corrections == {first: wrong}
    assert np.array_equal(review.order, frozen)  # nothing moved: the reviewer keeps the place
    assert grid.view.currentIndex().row() == 1  # … and is on the next image
    assert review.frozen and review.stale and grid.resort_button.text() == "Re-sort ●"
    # what the correction changed (1-NN: images nearest the corrected one follow it) is counted,
    # said, and can be listed
    changed = review.last_changed.tolist()
    assert changed and all(review.label(i) == wrong for i in changed)
    was = grid.delegate.cell(review.row_of(changed[0]))[6]  # the badge says what it was
    assert was == review.was_label(changed[0]) == truth[review.paths[changed[0]]] != wrong
    cell = grid.delegate.cell(review.row_of(changed[0]))
    badged = grid.delegate._render(cell, False, 140, 140, 1.0).toImage()
    plain = grid.delegate._render((*cell[:6], "", cell[7]), False, 140, 140, 1.0).toImage()
    assert badged.copy(0, 0, 140, 30) != plain.copy(0, 0, 140, 30)  # the badge, on top …
    assert badged.copy(0, 110, 140, 30) == plain.copy(0, 110, 140, 30)  # … the label bar as it was
    n = len(changed)
    assert f"changed {n} other label" in grid.counter.text()
    assert f"changed {n:,} other label" in app.window.status.text()
    assert "Reviewed 1 " in grid.counter.text()
    # Enter accepts, skipping images already reviewed
    grid.select_row(0)
    qtbot.keyClick(grid.view, Qt.Key.Key_Return)
    assert app.state.corrections[first] == wrong  # Enter does not undo the user's own label
    assert grid.view.currentIndex().row() == 1
    qtbot.keyClick(grid.view, Qt.Key.Key_Return)
    second = review.paths[int(frozen[1])]
    assert app.state.corrections[second] == review.predicted(int(frozen[1]))
    assert grid.view.currentIndex().row() == 2 and np.array_equal(review.order, frozen)
    grid.set_filter("changed")
    assert {int(b) for b in review.order} == set(review.last_changed.tolist())
    grid.set_filter("all")
    qtbot.keyClick(grid.view, Qt.Key.Key_F5)  # re-sort on request: reviewed images go last
    grid.resort_button.click()
    assert {review.paths[int(b)] for b in review.order[-2:]} == {first, second}
    assert not review.frozen


def test_drag_onto_a_class_is_a_correction_and_examples_are_explicit(
    make_app, qtbot, colour_images, tmp_path
):
    app, _truth = _labeled_app(make_app, qtbot, colour_images, tmp_path)
    grid, review = app.window.grid, app.review
    dragged = [review.paths[0], review.paths[1]]
    outside = str(tmp_path / "examples" / "blue" / "blue0.png")
    mime = grid.model.mimeData([grid.index(0), grid.index(1)])
    mime.setUrls([*mime.urls(), QUrl.fromLocalFile(outside)])
    blue_examples = list(app.state.find("blue").examples)
    drop = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    app.window.classes.card("blue").dropEvent(drop)
    assert {p: app.state.corrections[p] for p in dragged} == {p: "blue" for p in dragged}
    assert app.state.find("blue").examples == blue_examples  # already an example: kept once
    rows = {r.path: (r.label, r.source) for r in app.label_rows()}
    assert rows[dragged[0]] == ("blue", "user") and rows[dragged[1]] == ("blue", "user")
    assert grid.delegate.cell(0)[3]  # drawn with ✓
    # the labeler is told these are review labels (boundary cases: weighed less when refining)
    session = app.sessions[-1]
    qtbot.waitUntil(lambda: set(dragged) <= getattr(session, "reviewed", set()), timeout=5000)
    # "Add as example of …" is the explicit way to make an image an example
    grid.select_base([2])
    menu = grid.build_menu()
    examples = next(a.menu() for a in menu.actions() if a.text() == "Add as example of")
    next(a for a in examples.actions() if a.text() == "green").trigger()
    assert review.paths[2] in app.state.find("green").examples
    assert review.paths[2] not in app.state.corrections
    qtbot.waitUntil(lambda: ("add", review.paths[2], "green") in session.calls, timeout=5000)
    assert review.paths[2] not in session.reviewed  # an example, at full weight
    assert set(app.state.review_labels()) == set(dragged)  # what a restart sends as reviewed
    with qtbot.waitSignal(app.jobDone, timeout=10000):
        assert app.start()
    restarted = app.sessions[-1]
    assert restarted.reviewed == set(dragged)
    fitted = [call[1] for call in restarted.calls if call[0] == "set_support"][-1]
    assert set(fitted) <= set(app.state.names())  # the review list is not taken for a class
    app.window.undo_stack.undo()
    assert review.paths[2] not in app.state.find("green").examples
    # a plain file from outside the folder dropped on a class is an example, as before
    other = QMimeData()
    other.setUrls([QUrl.fromLocalFile(str(tmp_path / "examples" / "red" / "red1.png"))])
    app.window.classes.card("green").dropEvent(
        QDropEvent(
            QPointF(5, 5),
            Qt.DropAction.CopyAction,
            other,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )
    assert str(tmp_path / "examples" / "red" / "red1.png") in app.state.find("green").examples


def test_one_at_a_time_review_labels_accepts_skips_and_undoes(
    make_app, qtbot, colour_images, tmp_path
):
    app, _truth = _labeled_app(make_app, qtbot, colour_images, tmp_path)
    grid, review = app.window.grid, app.review
    grid.set_sort("least confident first")
    order = review.order.copy()
    grid.select_row(0)
    mode = app.reviewing.open_review_mode()
    qtbot.addWidget(mode)
    assert mode.row == 0 and review.frozen
    first = review.paths[int(order[0])]
    assert mode.caption.text().startswith(first.rsplit("/", 1)[-1])
    qtbot.keyClick(mode, Qt.Key.Key_3)  # third class
    assert app.state.corrections == {first: app.state.names()[2]}
    assert mode.row == 1
    qtbot.keyClick(mode, Qt.Key.Key_Right)  # skip
    assert mode.row == 2 and len(app.state.corrections) == 1
    qtbot.keyClick(mode, Qt.Key.Key_Return)  # accept
    third = review.paths[int(order[2])]
    assert app.state.corrections[third] == review.predicted(int(order[2]))
    assert mode.row == 3  # the next image not reviewed yet (the skipped one stays skipped)
    assert "reviewed 2" in mode.position.text()
    qtbot.keyClick(mode, Qt.Key.Key_Backspace)  # undo the accept, back on its image
    assert third not in app.state.corrections and mode.row == 2
    assert grid.selected_base().tolist() == [int(order[2])]  # the grid follows
    assert np.array_equal(review.order, order)
