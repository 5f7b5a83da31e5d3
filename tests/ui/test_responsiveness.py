"""What keeps the window responsive: the embedding view built after the window shows, coalesced
updates that still deliver every prediction, the grid painting its cells in one pass, the
worker's quiet imports, and the PySide6 None-reference workaround."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import numpy as np
import pytest
from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QAbstractItemView

from fewshot_gui.core.types import Predictions
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.qt import qtfix, warmup
from fewshot_gui.qt.throttle import Coalescer
from fewshot_gui.ui.image_grid import THUMB, ImageGrid, ImageView
from fewshot_gui.ui.state import LabelState


def _setup(app, support, folder):
    for name, paths in support.items():
        app.add_class(name)
        app.state.add_examples(name, paths)
    app.window.controls.folder.setText(str(folder))


def test_the_plot_is_built_once_the_window_has_painted(make_app, qtbot):
    app = make_app()
    assert app.window.plot_if_ready() is None  # not with the window: pyqtgraph is slow to import
    with qtbot.waitSignal(app.window.plotReady, timeout=20000):
        app.window.show()  # first paint → pyqtgraph imported in a thread → the view built
    plot = app.window.plot_if_ready()
    assert plot is not None and app.window.plot_page.currentWidget() is plot


def test_points_that_arrive_before_the_plot_is_built_are_shown_when_it_is(
    make_app, qtbot, colour_images, tmp_path
):
    app = make_app()
    support, truth = colour_images
    _setup(app, support, tmp_path / "folder")
    with qtbot.waitSignal(app.jobDone, timeout=10000):
        app.start()
    if app.window.plot_if_ready() is None:
        assert app.reviewing._plot_data is not None  # kept, and the view is being built
        qtbot.waitSignal(app.window.plotReady, timeout=20000).wait()
    plot = app.window.plot_if_ready()
    qtbot.waitUntil(lambda: len(plot.coords) == len(truth), timeout=10000)
    assert sorted(plot.paths) == sorted(truth)
    names = app.state.names()
    app.recolor_plot()
    assert [names[c] for c in plot.color_index] == [truth[p] for p in plot.paths]
    plot.select_mask(np.arange(len(plot.paths)) < 3)  # a lasso's result reaches the grid
    assert set(app.window.grid.selected_paths()) == set(plot.paths[:3])


def test_start_app_shows_the_window_then_builds_the_plot_then_warms_the_engine(
    qtbot, tmp_path, monkeypatch
):
    """The engine's warm-up waits for the embedding view (or, should the view be slow, for the
    fallback timer) and is asked for once; which of the view and the engine's answer arrives
    first is a race between threads, so the order of those two signals is not asserted."""
    import time

    from fewshot_gui.app import WARM_UP_FALLBACK_MS, start_app
    from fewshot_gui.ui.settings import AppSettings
    from fewshot_gui.workers import labeling

    monkeypatch.setattr(labeling, "available_choices", lambda: (["auto", "metric"], ["conv4"]))
    settings = AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    started = time.monotonic()
    controller = start_app(settings=settings, thumbnail_cache=None, after_show=lambda c: None)
    try:
        window = controller.window
        assert window.isVisible() and window.plot_if_ready() is None
        asked: list[tuple[bool, float]] = []  # (view built?, seconds since start) per request
        ask = controller.worker.request_choices
        monkeypatch.setattr(
            controller.worker,
            "request_choices",
            lambda: (
                asked.append((window.plot_if_ready() is not None, time.monotonic() - started))
                or ask()
            ),
        )
        answered: list[list[str]] = []
        controller.worker.worker.choicesReady.connect(lambda methods, _: answered.append(methods))
        qtbot.waitUntil(
            lambda: window.plot_if_ready() is not None and bool(answered), timeout=20000
        )
        assert len(asked) == 1  # once, from the event loop: never while the window was built
        view_built, after_s = asked[0]
        assert view_built or after_s >= WARM_UP_FALLBACK_MS / 1000 * 0.9
        assert answered == [["auto", "metric"]]
        assert window.controls.method.itemText(1) == "metric"
    finally:
        controller.shutdown()
        controller.window.close()


def test_coalescer_applies_the_first_item_at_once_and_the_rest_together_in_order(qtbot):
    batches: list[list[int]] = []
    coalescer = Coalescer(batches.append, 50)
    coalescer.push(1)
    assert batches == [[1]]
    for k in (2, 3, 4):
        coalescer.push(k)
    assert batches == [[1]] and coalescer.pending == 3
    qtbot.waitUntil(lambda: len(batches) == 2, timeout=2000)
    assert batches == [[1], [2, 3, 4]]
    coalescer.push(5)
    coalescer.flush()  # e.g. before the job's end is shown
    assert batches[-1] == [5] and coalescer.pending == 0


def test_coalesced_predictions_reach_the_grid_every_one(make_app, qtbot, colour_images, tmp_path):
    app = make_app(batch=1)  # one prediction signal per image
    support, truth = colour_images
    _setup(app, support, tmp_path / "folder")
    shown: list[int] = []
    app.predictionsShown.connect(shown.append)
    with qtbot.waitSignal(app.jobDone, timeout=10000) as done:
        app.start()
    assert done.args[1] == "done"
    assert sum(shown) == len(truth) and 1 <= len(shown) <= len(truth)
    model = app.window.grid.model
    assert {p: model.label(i) for i, p in enumerate(model.paths)} == truth


class _Thumbnails:
    def __init__(self) -> None:
        self.image = QImage(THUMB, 80, QImage.Format.Format_RGB32)
        self.image.fill(QColor("#446688"))

    def request(self, path: str) -> QImage | None:
        return self.image if path.endswith(("1.jpg", "2.jpg", "5.jpg")) else None


def test_grid_paints_its_cells_exactly_as_qt_would(qtbot, monkeypatch):
    state = LabelState()
    for name, color in (("a", "#e6550d"), ("b", "#3182bd")):
        state.insert_class(ClassInfo(name, color))
    grid = ImageGrid(state, None)
    qtbot.addWidget(grid)
    grid.model.thumbnails = _Thumbnails()
    grid.resize(700, 600)
    grid.show()
    n = 300
    probs = np.random.default_rng(0).dirichlet([1, 1], n)
    paths = [f"/img/{i}.jpg" for i in range(n)]
    grid.model.update_predictions(Predictions.from_probabilities(paths, ["a", "b"], probs, 0.55))
    state.set_corrections({paths[2]: "b"})
    grid.model.failed[4] = "not an image"
    grid.select_base([1, 5, 6])
    qtbot.waitUntil(lambda: grid.view.visualRect(grid.index(n - 1)).isValid(), timeout=5000)
    taken = []
    fast = ImageView.paint_cells
    monkeypatch.setattr(
        ImageView, "paint_cells", lambda view, a, d: taken.append(fast(view, a, d)) or taken[-1]
    )
    for scroll in (0, 333):
        grid.view.verticalScrollBar().setValue(scroll)
        taken.clear()
        ours = grid.view.viewport().grab().toImage()
        assert taken and all(taken)  # painted in one pass, not by Qt
        monkeypatch.setattr(ImageView, "paint_cells", lambda view, a, d: False)
        qt = grid.view.viewport().grab().toImage()
        monkeypatch.setattr(
            ImageView,
            "paint_cells",
            lambda view, a, d: taken.append(fast(view, a, d)) or taken[-1],
        )
        assert ours == qt, f"scrolled {scroll}"
    taken.clear()
    grid.view.setState(QAbstractItemView.State.DragSelectingState)  # Qt draws the rubber band
    grid.view.viewport().grab()
    assert taken == []
    grid.view.setState(QAbstractItemView.State.NoState)


def test_points_item_bounds_and_groups(qtbot):
    from fewshot_gui.plots.embedding import EmbeddingPlot

    plot = EmbeddingPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 300)
    plot.show()
    coords = np.array([[0, 0], [1, 2], [3, -1], [2, 2]], np.float32)
    plot.paths = [f"/p{i}" for i in range(4)]
    plot.coords = coords
    plot.color_index = np.array([0, 1, -1, 1])
    plot.palette = ["#ff0000", "#00ff00"]
    plot.selected = np.array([False, True, False, False])
    plot.redraw()
    assert plot.scatter.dataBounds(0) == (0.0, 3.0) and plot.scatter.dataBounds(1) == (-1.0, 2.0)
    groups = {color: len(xy) for color, _, xy in plot.scatter._groups}
    assert groups == {"#ff0000": 1, "#00ff00": 2, "#9e9e9e": 1}
    ring = [len(xy) for _, _, xy in plot.selection_item._groups]
    assert ring == [1, 1, 1]  # ring, gap, the selected point in its colour
    plot.widget.viewport().repaint()  # paints without error
    plot.set_selection([])
    assert plot.selection_item._groups == [] and plot.selection_item.dataBounds(0) == (None, None)


def test_gc_paused_nests_restores_and_freezes():
    assert gc.isenabled()
    before = gc.get_freeze_count()
    with warmup.gc_paused():
        with warmup.gc_paused(freeze=False):
            assert not gc.isenabled()
        assert not gc.isenabled()
        kept = [[] for _ in range(100)]  # noqa: F841  (frozen on the way out)
    assert gc.isenabled() and gc.get_freeze_count() >= before


def test_gc_paused_across_threads_enables_when_the_last_block_ends():
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with warmup.gc_paused(freeze=False):
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with warmup.gc_paused(freeze=False):
        thread.start()
        inside.wait(5)
    assert not gc.isenabled()  # the other thread is still importing
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_preloading_and_background_imports_do_not_import_torch():
    code = (
        "import sys; from fewshot_gui.qt import warmup\n"
        "n = warmup.preload_native_libraries()\n"
        "warmup.import_quietly('json')\n"
        "print(n >= 0, 'torch' in sys.modules, 'json' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "True"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux")
def test_lower_thread_priority_affects_only_the_calling_thread():
    import os

    seen: dict[str, int] = {}

    def lowered() -> None:
        assert warmup.lower_thread_priority(3)
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=lowered)
    thread.start()
    thread.join()
    assert seen["worker"] == min(19, main + 3)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


def test_void_qt_calls_cannot_exhaust_none():
    probe = QObject()
    for _ in range(200_000):  # more references than None has in a fresh interpreter
        probe.setObjectName("")
    assert sys.getrefcount(None) > 1_000 and probe.objectName() == ""
    if qtfix.void_calls_leak_none():
        assert sys.getrefcount(None) > qtfix.RESERVE // 4


def test_app_window_shows_before_pyqtgraph_is_imported():
    code = (
        "import sys, fewshot_gui.app, fewshot_gui.commands.gui\n"
        "print([m for m in ('torch', 'pyqtgraph', 'fewshot_gui.session') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_item_flags_allow_dragging_selected_images():
    grid = ImageGrid(LabelState(), None)
    grid.model.update_predictions(
        Predictions.from_probabilities(["/a.jpg"], ["x"], np.ones((1, 1), np.float32))
    )
    flags = grid.model.flags(grid.model.index(0))
    assert flags & Qt.ItemFlag.ItemIsDragEnabled and flags & Qt.ItemFlag.ItemIsSelectable
    assert grid.model.flags(grid.model.index(5)) == Qt.ItemFlag.NoItemFlags
