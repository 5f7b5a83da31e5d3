"""The image grid at 100,000 items and the embedding plot ↔ grid selection link."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, Qt

from fewshot_gui.core.types import UNKNOWN, Predictions
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.plots.projection import pca_2d, points_in_polygon, points_in_rect
from fewshot_gui.ui.image_grid import ImageGrid
from fewshot_gui.ui.state import LabelState


def _predictions(n: int, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([1.0, 1.0, 1.0], n).astype(np.float32)
    return Predictions.from_probabilities(
        [f"/img/{i:06d}.jpg" for i in range(n)], ["a", "b", "c"], probs, unknown_threshold=0.4
    )


def _classes(app, support, folder):
    for name, paths in support.items():
        app.add_class(name)
        app.state.add_examples(name, paths)
    app.window.controls.folder.setText(str(folder))


def _label_and_plot(app, qtbot, n: int):
    """Label the folder and wait for the embedding view to show all ``n`` images."""
    plot = app.window.plot
    with qtbot.waitSignal(app.jobDone, timeout=10000):
        app.start()
    qtbot.waitUntil(lambda: len(plot.paths) == n and not plot.projecting, timeout=5000)
    return plot


def test_grid_handles_100k_images_sorts_and_filters_fast(qtbot):
    state = LabelState()
    for name in "abc":
        state.insert_class(ClassInfo(name))
    grid = ImageGrid(state, None)
    qtbot.addWidget(grid)
    grid.resize(800, 600)
    grid.show()
    pred = _predictions(100_000)
    started = time.perf_counter()
    for start in range(0, 100_000, 25_000):  # streamed in batches, as the worker does
        grid.model.update_predictions(
            Predictions(
                pred.paths[start : start + 25_000],
                pred.classes,
                pred.probabilities[start : start + 25_000],
                pred.labels[start : start + 25_000],
                pred.confidences[start : start + 25_000],
            )
        )
    grid.set_sort("least confident first")
    took = time.perf_counter() - started
    model = grid.model
    assert model.rowCount() == 100_000 and took < 3.0, took
    conf = [model.data(model.index(r), 0x0103) for r in range(0, 100_000, 10_000)]
    assert conf == sorted(conf)  # the review queue: least confident first
    grid.set_filter("unknown")
    assert model.rowCount() == sum(lab == UNKNOWN for lab in pred.labels)
    grid.set_filter("class", "b")
    assert model.rowCount() == sum(lab == "b" for lab in pred.labels)
    started = time.perf_counter()
    grid.view.verticalScrollBar().setValue(grid.view.verticalScrollBar().maximum() // 2)
    grid.view.viewport().repaint()
    assert time.perf_counter() - started < 0.5


def test_plot_rectangle_and_lasso_select_in_the_grid_and_back(
    make_app, qtbot, colour_images, tmp_path
):
    app = make_app()
    support, truth = colour_images
    for name, paths in support.items():
        app.add_class(name)
        app.state.add_examples(name, paths)
    app.window.controls.folder.setText(str(tmp_path / "folder"))
    plot = _label_and_plot(app, qtbot, len(truth))
    coords = plot.coords
    assert coords.shape == (len(truth), 2)
    x0, x1 = np.percentile(coords[:, 0], [0, 50])
    y0, y1 = coords[:, 1].min() - 1, coords[:, 1].max() + 1
    expected = points_in_rect(coords, x0, y0, x1, y1)
    plot.viewbox.regionSelected.emit(
        "rect", np.array([[x0, y0], [x1, y1]]), Qt.KeyboardModifier.NoModifier
    )
    grid_paths = set(app.window.grid.selected_paths())
    assert grid_paths == {plot.paths[i] for i in np.flatnonzero(expected)} and grid_paths
    triangle = np.array([[x0, y0], [x1, y0], [x1, y1]])
    plot.viewbox.regionSelected.emit("lasso", triangle, Qt.KeyboardModifier.NoModifier)
    inside = points_in_polygon(coords, triangle)
    assert set(app.window.grid.selected_paths()) == {plot.paths[i] for i in np.flatnonzero(inside)}
    # grid → plot
    app.window.grid.select_base([0, 1])
    app.window.grid._selection_changed()
    chosen = {app.window.grid.model.paths[0], app.window.grid.model.paths[1]}
    assert {plot.paths[i] for i in np.flatnonzero(plot.selected)} == chosen
    # assigning a class to the lasso selection labels every selected image (one undo step)
    app.label_paths(app.window.grid.selected_paths(), "red")
    assert {app.state.corrections[p] for p in chosen} == {"red"}
    app.window.undo_stack.undo()
    assert app.state.corrections == {}


def test_plot_colours_follow_labels_and_support_is_marked(make_app, qtbot, colour_images, tmp_path):
    app = make_app()
    support, truth = colour_images
    _classes(app, support, tmp_path / "folder")
    plot = _label_and_plot(app, qtbot, len(truth))
    app.recolor_plot()
    names = app.state.names()
    assert [names[c] for c in plot.color_index] == [truth[p] for p in plot.paths]
    app.label_paths([plot.paths[0]], "blue")
    app.recolor_plot()
    assert plot.support[0] and names[plot.color_index[0]] == "blue"


def test_projection_helpers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 20)).astype(np.float32)
    x[:, 3] *= 10
    coords = pca_2d(x)
    assert coords.shape == (500, 2) and abs(np.corrcoef(coords[:, 0], x[:, 3])[0, 1]) > 0.99
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    pts = np.array([[0.5, 0.5], [1.5, 0.5], [0.1, 0.9], [-0.1, 0.5]])
    assert points_in_polygon(pts, square).tolist() == [True, False, True, False]
    assert points_in_rect(pts, 1, 1, 0, 0).tolist() == [True, False, True, False]


def test_embedding_view_fills_while_labeling_and_keeps_its_points_after_stop(
    make_app, qtbot, colour_images, tmp_path, monkeypatch
):
    from fewshot_gui.ui import review_controller

    monkeypatch.setattr(review_controller, "LIVE_PLOT_MS", 300)
    app = make_app(delay=0.15, batch=1)
    support, truth = colour_images
    _classes(app, support, tmp_path / "folder")
    plot = app.window.plot
    app.start()
    qtbot.waitUntil(lambda: len(plot.paths) >= 3, timeout=10000)
    assert app.running  # points appear before the job is done
    shown = len(plot.paths)
    qtbot.waitUntil(lambda: len(plot.paths) > shown, timeout=10000)  # … and follow it
    with qtbot.waitSignal(app.jobDone, timeout=5000) as done:
        app.stop()
    assert done.args[1] == "cancelled"
    labeled = set(app.review.paths)
    assert len(labeled) < len(truth)
    qtbot.waitUntil(lambda: set(plot.paths) == labeled and not plot.projecting, timeout=10000)
    names = app.state.names()  # coloured by label, after Stop too
    assert [names[c] for c in plot.color_index] == [truth[p] for p in plot.paths]
    (x0, x1), (y0, y1) = plot.viewbox.viewRange()  # the view follows the new points
    assert x0 <= plot.coords[:, 0].min() and plot.coords[:, 0].max() <= x1
    assert y0 <= plot.coords[:, 1].min() and plot.coords[:, 1].max() <= y1
    assert all(n in plot.legend.text() for n in names) and "your labels" in plot.legend.text()


def test_show_selection_only_filters_the_grid_to_a_rectangle_selection(
    make_app, qtbot, colour_images, tmp_path
):
    app = make_app()
    support, truth = colour_images
    _classes(app, support, tmp_path / "folder")
    plot = _label_and_plot(app, qtbot, len(truth))
    coords = plot.coords
    x0, x1 = np.percentile(coords[:, 0], [0, 40])
    y0, y1 = coords[:, 1].min() - 1, coords[:, 1].max() + 1
    plot.viewbox.regionSelected.emit(
        "rect", np.array([[x0, y0], [x1, y1]]), Qt.KeyboardModifier.NoModifier
    )
    chosen = {plot.paths[i] for i in np.flatnonzero(plot.selected)}
    assert 0 < len(chosen) < len(truth) and plot.only_button.isEnabled()
    plot.only_button.click()
    grid, review = app.window.grid, app.review
    assert {review.paths[int(b)] for b in review.order} == chosen
    assert grid.filter_box.currentData() == ("selection", "")
    grid.select_row(0)  # clicking in the filtered grid does not shrink it
    assert grid.model.rowCount() == len(chosen)
    plot.only_button.click()
    assert grid.model.rowCount() == len(truth) and not plot.only_button.isChecked()


def test_hover_card_shows_thumbnail_label_and_confidence_beside_the_point(
    make_app, qtbot, colour_images, tmp_path
):
    from PySide6.QtGui import QColor, QImage

    app = make_app()
    support, truth = colour_images
    _classes(app, support, tmp_path / "folder")
    plot = app.window.plot
    image = QImage(96, 64, QImage.Format.Format_RGB32)
    image.fill(QColor("#446688"))
    asked: list[str] = []  # the first request is decoded off-thread: None, then the image
    plot.thumbnail = lambda path: image if asked.append(path) or len(asked) > 1 else None
    app.window.resize(1400, 860)
    app.window.show()
    _label_and_plot(app, qtbot, len(truth))
    qtbot.waitUntil(lambda: plot.color_index.max() >= 0, timeout=3000)
    plot.viewbox.autoRange()
    i = 0
    scene = plot.viewbox.mapViewToScene(QPointF(*map(float, plot.coords[i])))
    plot._hover((scene,))
    card = plot.hover
    assert card.isVisible() and not card.image.isVisible()
    qtbot.waitUntil(card.image.isVisible, timeout=2000)  # shown once decoded
    text = card.text.text()
    k = app.review.point_base[i]
    assert truth[plot.paths[i]] in text and f"{app.review.conf[k]:.0%}" in text
    at = plot.widget.mapFromScene(scene)
    assert not card.geometry().contains(at)  # the card sits beside the point
    assert card.image.geometry().bottom() < card.text.geometry().top()  # text under the image
    assert plot.widget.toolTip() == ""  # no tooltip over the card


def test_a_relabel_of_many_rows_repaints_the_grid_without_announcing_each_row(qtbot, monkeypatch):
    """An icon-mode list view re-sizes every row a ``dataChanged`` spans (a million rows: 0.2 s),
    so a re-label of many rows asks the view to repaint instead; a few rows still say which."""
    from fewshot_gui.ui import grid_model

    monkeypatch.setattr(grid_model, "REPAINT_SPAN", 10)
    state = LabelState()
    for name in "abc":
        state.insert_class(ClassInfo(name))
    grid = ImageGrid(state, None)
    qtbot.addWidget(grid)
    grid.model.update_predictions(_predictions(200))
    spans, repaints = [], []
    grid.model.dataChanged.connect(lambda a, b, *_: spans.append((a.row(), b.row())))
    grid.model.repaintRequested.connect(lambda: repaints.append(1))
    relabel = _predictions(200, seed=1)
    grid.model.update_predictions(relabel)
    assert repaints and all(b - a < 10 for a, b in spans)
    labels = [grid.model.data(grid.model.index(r), 0x0102) for r in range(200)]
    assert labels == relabel.labels  # what the repaint shows is the new labels
    repaints.clear()
    state.set_corrections({relabel.paths[7]: "c"})
    assert spans[-1] == (7, 7) and not repaints


def test_a_sampled_view_draws_every_selected_point_and_lassos_select_among_all(qtbot, monkeypatch):
    """Beyond MAX_DRAWN points (a million-row result) a sample stratified by colour is drawn, yet
    a selection from the grid shows where its images lie though they are outside the sample, and
    a rectangle or lasso selects every point inside it, drawn or not."""
    from fewshot_gui.plots import embedding

    monkeypatch.setattr(embedding, "MAX_DRAWN", 60)
    monkeypatch.setattr(embedding, "MIN_PER_COLOUR", 5)
    plot = embedding.EmbeddingPlot()
    qtbot.addWidget(plot)
    plot.resize(500, 400)
    plot.show()
    rng = np.random.default_rng(3)
    colour = np.repeat([0, 1, 2], [500, 80, 20])  # a small class keeps a few points drawn
    vectors = (np.eye(3, 8)[colour] * 5 + rng.normal(size=(600, 8))).astype(np.float32)
    paths = [f"/img/{i:04d}.jpg" for i in range(600)]
    plot.set_embeddings(paths, vectors)
    qtbot.waitUntil(lambda: len(plot.paths) == 600 and not plot.projecting, timeout=10000)
    plot.set_colors(colour, ["#ff0000", "#00ff00", "#0000ff"])

    def drawn(item) -> np.ndarray:
        return np.concatenate([xy for _c, _d, xy in item._groups] or [np.zeros((0, 2))])

    shown = drawn(plot.scatter)
    assert 15 <= len(shown) <= 60 + 15 and len(plot.drawn) == len(shown)
    assert set(colour[plot.drawn]) == {0, 1, 2}  # every colour drawn, the small one too
    outside = np.setdiff1d(np.arange(600), plot.drawn)[:10]
    plot.set_selection(outside)  # from the grid: images the sample does not draw
    rings = plot.selection_item._groups[0][2]  # the yellow rings, one per selected point
    assert np.array_equal(np.sort(rings, axis=0), np.sort(plot.coords[outside], axis=0))
    plot.viewbox.autoRange()
    middle = outside[np.argmin(np.abs(plot.coords[outside] - plot.coords.mean(0)).sum(1))]
    at = plot.viewbox.mapViewToScene(QPointF(*plot.coords[middle]))
    assert plot.nearest(at) in set(outside.tolist())  # hovered like any drawn point
    x0, x1 = np.percentile(plot.coords[:, 0], [10, 60])
    y0, y1 = np.percentile(plot.coords[:, 1], [10, 90])
    with qtbot.waitSignal(plot.selectionMade) as made:
        plot.viewbox.regionSelected.emit(
            "rect", np.array([[x0, y0], [x1, y1]]), Qt.KeyboardModifier.NoModifier
        )
    inside = np.flatnonzero(points_in_rect(plot.coords, x0, y0, x1, y1))
    assert made.args[0].tolist() == inside.tolist() and len(inside) > len(shown)
    assert len(plot.selection_item._groups[0][2]) == len(inside)  # all of them drawn
    triangle = np.array([[x0, y0], [x1, y0], [x1, y1]])
    plot.viewbox.regionSelected.emit("lasso", triangle, Qt.KeyboardModifier.NoModifier)
    lassoed = points_in_polygon(plot.coords, triangle)
    assert np.array_equal(plot.selected, lassoed) and lassoed.sum() > 0


def test_lasso_by_y_slices_equals_the_edge_by_edge_test_and_samples_keep_each_colour():
    from fewshot_gui.plots.points_item import _one_per_pixel
    from fewshot_gui.plots.projection import representative, y_order_of

    rng = np.random.default_rng(5)
    points = rng.normal(size=(5000, 2))
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    lasso = np.c_[np.cos(angles), np.sin(angles)] * rng.uniform(0.5, 2.0, (40, 1))
    inside = np.zeros(len(points), bool)  # the even-odd rule, every edge against every point
    xj, yj = lasso[-1]
    for xi, yi in lasso:
        crosses = (yi > points[:, 1]) != (yj > points[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = (xj - xi) * (points[:, 1] - yi) / (yj - yi) + xi
        inside ^= crosses & (points[:, 0] < x_cross)
        xj, yj = xi, yi
    assert np.array_equal(points_in_polygon(points, lasso), inside) and inside.any()
    assert np.array_equal(points_in_polygon(points, lasso, y_order_of(points)), inside)
    colour = np.repeat([-1, 0, 3], [9000, 900, 30])
    sample = representative(colour, 500, least=20)
    assert np.array_equal(sample, representative(colour, 500, least=20))  # repeatable
    counts = np.bincount(colour[sample] + 1)
    assert counts.tolist() == [453, 45, 0, 0, 20]  # in proportion, at least 20 of each
    sx = np.array([10.2, 10.7, 10.4, 30.0, 30.9])
    sy = np.array([5.1, 5.6, 5.9, 8.0, 8.2])
    x, y = _one_per_pixel(sx, sy, 4.0)  # three points on one pixel, two on another
    assert sorted(zip(x.tolist(), y.tolist(), strict=True)) == [(10.5, 5.5), (30.5, 8.5)]
