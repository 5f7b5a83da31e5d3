"""Reopening a project shows its predictions at once from the embedding cache (nothing decoded)
and keeps the view: sort, filter, method, folder, panel widths; stale notices are cleared."""

from __future__ import annotations

from PIL import Image

from tests.ui.conftest import run_labeling, setup_labeling


def _label(app, qtbot, support, folder):
    setup_labeling(app, support, folder)
    assert run_labeling(qtbot, app) == "done"


def test_reopen_shows_cached_predictions_and_keeps_the_view(
    make_app, qtbot, colour_images, tmp_path
):
    support, truth = colour_images
    folder = tmp_path / "folder"
    Image.new("RGB", (8, 8)).save(folder / "late.png")  # labeled, then dropped from the "cache"
    first = make_app()
    _label(first, qtbot, support, folder)
    first.window.grid.set_sort("least confident first")
    first.window.grid.set_filter("class", "green")
    first.window.splitter.setSizes([300, 700, 400])
    sizes = first.window.splitter.sizes()
    project = str(tmp_path / "p.fewshot")
    assert first.save_as(project)
    type(first.sessions[-1]).disk.pop(str(folder / "late.png"))  # the fake's on-disk cache

    second = make_app()
    second.show_error("Drop at least one example image on a class first.")  # a stale notice
    with qtbot.waitSignal(second.jobDone, timeout=10000) as done:
        assert second.open_project(project)
    assert done.args[1] == "done"
    assert not second.window.messages.isVisibleTo(second.window)
    session = second.sessions[-1]
    assert ("cached_only", len(truth) + 1) in session.calls
    review = second.review
    labels = {p: review.label(i) for i, p in enumerate(review.paths)}
    assert labels == truth  # every cached image, labeled; late.png waits for "Label folder"
    assert "1 are not labeled yet" in second.window.status.text()
    grid = second.window.grid
    assert grid.sort_box.currentText() == "least confident first"
    assert tuple(grid.filter_box.currentData()) == ("class", "green")
    assert second.window.controls.settings()["folder"] == str(folder)
    assert second.window.splitter.sizes() == sizes
    assert not second.window.isWindowModified()
