"""What the review loop costs the GUI thread at N images (default 100,000): the review model's
share of one correction, a key press in the frozen least-confident view, and one live update of
the embedding view. Medians of --repeat runs, in milliseconds, offscreen Qt; no model, no torch.

    python benchmarks/review_view.py [--images 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from fewshot_gui.core.types import Predictions
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.plots.projection import align_axes

CLASSES = ["a", "b", "c", "d"]


def _predictions(paths: list[str], seed: int) -> Predictions:
    probs = np.random.default_rng(seed).dirichlet([1.0] * len(CLASSES), len(paths))
    return Predictions.from_probabilities(paths, CLASSES, probs.astype(np.float32))


def _median_ms(times: list[float]) -> str:
    return f"{1000 * statistics.median(times):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from fewshot_gui.ui.image_grid import ImageGrid
    from fewshot_gui.ui.state import LabelState

    app = QApplication.instance() or QApplication([])
    n = args.images
    paths = [f"/img/{i:06d}.jpg" for i in range(n)]
    state = LabelState()
    for name in CLASSES:
        state.insert_class(ClassInfo(name, state.next_color()))
    grid = ImageGrid(state, None)
    grid.resize(800, 700)
    grid.show()
    review = state.review
    grid.labelRequested.connect(  # as the app's undo command does
        lambda chosen, label: state.set_corrections({p: label for p in chosen})
    )
    review.update_predictions(_predictions(paths, 0))
    grid.set_sort("least confident first")
    app.processEvents()

    correction, key, points = [], [], []
    for k in range(args.repeat):
        # a correction: the snapshot, then the session's full re-label and what it changed
        relabeled = _predictions(paths, k + 1)  # what the session sends back
        started = time.perf_counter()
        review.set_corrections({paths[int(review.order[k])]: "a"})
        review.expect_relabel()
        review.update_predictions(relabeled)
        correction.append(time.perf_counter() - started)
        # a key press in the frozen view: label, repaint, move to the next image
        grid.select_row(len(review.order) // 2 + k)
        app.processEvents()
        started = time.perf_counter()
        grid.view.keyLabel.emit(1)
        grid.view.viewport().repaint()
        key.append(time.perf_counter() - started)
        assert review.frozen
        # a live update of the embedding view: 80% of the folder known, the rest new
        known = int(0.8 * n)
        review.set_points(paths[:known])
        previous = np.random.default_rng(k).normal(size=(known, 2)).astype(np.float32)
        coords = np.random.default_rng(k + 1).normal(size=(n, 2)).astype(np.float32)
        started = time.perf_counter()
        review.set_points(paths)
        align_axes(coords, paths, previous, paths[:known])
        review.point_colors()
        points.append(time.perf_counter() - started)
    print(f"{n:,} images, {len(CLASSES)} classes, medians of {args.repeat}:")
    print(
        f"  review model, one correction (snapshot + full re-label + changes): {_median_ms(correction)}"
    )
    print(
        f"  key press in the frozen least-confident view (label, repaint, next): {_median_ms(key)}"
    )
    print(
        f"  live plot update, 80% of the points known (map, align, colours):   {_median_ms(points)}"
    )
    print(f"  last correction changed {len(review.last_changed):,} labels (random re-label)")
    grid.close()


if __name__ == "__main__":
    main()
