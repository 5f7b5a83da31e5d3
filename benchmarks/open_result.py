"""The app opening a large labeling result (``label --engine ray`` output): time to a usable window,
longest GUI-thread stalls while it loads, scrolls, re-labels after a correction and re-plots, and
memory.

    python benchmarks/open_result.py                      # 1,000,000 rows, 256-d, 10 classes
    python benchmarks/open_result.py --rows 100000 --dim 1280

Writes a synthetic result (clustered random fp16 embeddings; labels, probabilities and unknown
scores from the cluster engine's second pass, i.e. the labeling session's own code), then runs the
app offscreen in this process with a 5 ms heartbeat timer on the GUI thread (a stall is the gap
between two beats) and ``File ▸ Open labeling result`` on it. Phases: ``open`` (the call that
shows every row in the grid), ``session`` (the worker builds the session over the stored
embeddings, sends every prediction and a plot sample), ``plot`` (until the view has projected it),
``lasso`` (a lasso over the plot selects every image inside it, drawn or not, and the grid
follows), ``scroll`` (the grid scrolled through in 40 steps), ``correction`` (one image made an example of
another class: every row re-labeled, grid and plot updated).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB (Linux)."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _stack(frame) -> list[str]:
    return [f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in
            traceback.extract_stack(frame)[-6:]]  # fmt: skip


class StallSampler:
    """Samples every thread's Python stack every few ms (``--stalls``): a GUI stall is either the
    GUI thread busy (its own stack says where) or another thread holding the GIL in one long call
    (this sampler then waits too, and the stack it finds first is that thread's)."""

    def __init__(self, every_s: float = 0.01) -> None:
        self.every_s = every_s
        self.gui = threading.get_ident()
        self.samples: list[tuple[float, float, dict[int, list[str]]]] = []  # (asked, got, stacks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.is_set():
            asked = time.perf_counter() + self.every_s
            time.sleep(self.every_s)
            got = time.perf_counter()
            frames = sys._current_frames().items()
            stacks = {ident: _stack(frame) for ident, frame in frames if ident != me}
            self.samples.append((asked, got, stacks))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, times: np.ndarray, gaps_ms: np.ndarray, over_ms: float) -> None:
        """Where the GUI thread's gaps longer than ``over_ms`` went (most frequent frames)."""
        names = {t.ident: t.name for t in threading.enumerate()}
        for k in np.flatnonzero(gaps_ms > over_ms):
            start, end = times[k], times[k + 1]
            seen: collections.Counter = collections.Counter()
            for asked, got, stacks in self.samples:
                if start <= got <= end:
                    late = got - asked > 0.03  # the sampler waited for the GIL
                    for ident, stack in stacks.items():
                        who = "GUI" if ident == self.gui else names.get(ident, str(ident))
                        if ident == self.gui or late:
                            seen[(who, " < ".join(reversed(stack[-4:])))] += 1
            print(f"  stall {gaps_ms[k]:.0f} ms at +{start - times[0]:.2f} s:")
            for (who, where), count in seen.most_common(4):
                print(f"    {count:3d} × [{who}] {where}")


def make_result(root: Path, rows: int, dim: int, classes: int, seed: int = 0) -> Path:
    """A result folder of ``rows`` synthetic images (1 % failed), shards of 100,000 rows."""
    from fewshot_gui.cluster.refine import refine_result
    from fewshot_gui.cluster.shards import (
        ResultFolder,
        RunInfo,
        ShardWriter,
        failure_rows,
        rows_table,
    )

    rng = np.random.default_rng(seed)
    names = [f"class {k}" for k in range(classes)]
    centers = rng.normal(size=(classes, dim)).astype(np.float32)
    support_paths = [f"/photos/examples/{n}/{i}.jpg" for n in names for i in range(3)]
    support = np.repeat(centers, 3, axis=0) + rng.normal(scale=0.6, size=(len(support_paths), dim))
    info = RunInfo(names, "efficientnet-lite0", "synthetic", "metric", "metric", dim, True, "x")
    info.support = [(p, p.split("/")[3]) for p in support_paths]
    folder = ResultFolder(root)
    folder.begin(info, support.astype(np.float16).astype(np.float32), None)
    writer = ShardWriter(folder, rows=100_000)
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        paths = [f"/photos/archive/{i // 1000:04d}/img{i:07d}.jpg" for i in range(start, start + n)]
        bad = rng.random(n) < 0.01
        truth = rng.integers(0, classes, n)
        emb = centers[truth] + rng.normal(scale=1.2, size=(n, dim)).astype(np.float32)
        ok = ~bad
        columns = {
            "path": [p for p, b in zip(paths, bad, strict=True) if not b],
            "label": [""] * int(ok.sum()),
            "confidence": np.zeros(ok.sum()),
            "unknown_score": np.full(ok.sum(), np.nan),
            "error": [""] * int(ok.sum()),
            "probabilities": np.zeros((ok.sum(), classes)),
            "embedding": emb[ok],
        }
        writer.add(rows_table(columns, names, dim))
        failed = [p for p, b in zip(paths, bad, strict=True) if b]
        writer.add(failure_rows(failed, ["truncated or incomplete image data"] * len(failed),
                                names, dim))  # fmt: skip
    writer.flush()
    refine_result(root)  # labels from the session's code, as a cluster run's second pass
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--result", type=Path, default=None, help="an existing result folder")
    parser.add_argument("--make", type=Path, default=None, help="only write a result there")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--stalls", type=float, default=0.0, metavar="MS",
        help="sample the threads' stacks and say where each GUI stall over MS ms went",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")
    work = Path(tempfile.mkdtemp(prefix="open-result-"))
    root = args.result
    if args.make:
        make_result(args.make, args.rows, args.dim, args.classes)
        return
    if root is None:
        t = time.perf_counter()
        root = make_result(work / "result", args.rows, args.dim, args.classes)
        print(f"synthetic result: {args.rows:,} rows × {args.dim}-d, {args.classes} classes, "
              f"written in {time.perf_counter() - t:.1f} s")  # fmt: skip
    print(f"memory before the app: {rss_mb()[0]:.0f} MB")

    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from fewshot_gui.app import start_app
    from fewshot_gui.ui.settings import AppSettings

    QApplication.instance() or QApplication([])
    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
    heartbeat.start()
    sampler = StallSampler() if args.stalls else None
    loop = QEventLoop()

    def wait(ready, limit: float = args.timeout) -> None:
        end = time.perf_counter() + limit
        poll = QTimer()
        poll.timeout.connect(lambda: (ready() or time.perf_counter() > end) and loop.quit())
        poll.start(5)
        loop.exec()
        poll.stop()

    settings = AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    app = start_app(settings=settings, thumbnail_cache=None, session_options={})
    worker = app.worker.worker
    state = {"choices": False, "done": False, "projected": 0, "shown": 0}
    worker.choicesReady.connect(lambda *_: state.update(choices=True))
    app.jobDone.connect(lambda _j, s: state.update(done=s))
    app.predictionsShown.connect(lambda n: state.update(shown=state["shown"] + n))
    wait(lambda: state["choices"] and app.window.plot_if_ready() is not None)
    app.window.plot.projected.connect(lambda *_: state.update(projected=state["projected"] + 1))
    marks: list[tuple[str, float]] = []

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    opened: list[float] = []
    app.results.opened.connect(lambda _folder, seconds: opened.append(seconds))
    mark("open")
    t_open = time.perf_counter()
    app.results.open(str(root))
    wait(lambda: bool(opened))
    usable = time.perf_counter() - t_open
    rows_shown = app.window.grid.model.rowCount()
    mark("session")
    wait(lambda: bool(state["done"]))
    session_s = time.perf_counter() - t_open
    mark("plot")
    wait(lambda: state["projected"] > 0, 120)
    plot_s = time.perf_counter() - t_open
    memory = rss_mb()
    mark("lasso")
    plot = app.window.plot
    x0, x1 = np.percentile(plot.coords[:, 0], [20, 60])
    y0, y1 = np.percentile(plot.coords[:, 1], [20, 80])
    lasso = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    t_lasso = time.perf_counter()
    plot.viewbox.regionSelected.emit("lasso", lasso, Qt.KeyboardModifier.NoModifier)
    lasso_s = time.perf_counter() - t_lasso
    lassoed = int(plot.selected.sum())
    settle = time.perf_counter() + 0.5
    wait(lambda: time.perf_counter() > settle)
    mark("scroll")
    bar = app.window.grid.view.verticalScrollBar()
    for step in range(41):
        bar.setValue(int(bar.maximum() * step / 40))
        pause = time.perf_counter() + 0.05
        wait(lambda p=pause: time.perf_counter() > p)
    mark("correction")
    review = app.review
    target = review.paths[len(review.paths) // 2]
    shown, projected = state["shown"], state["projected"]
    t_fix = time.perf_counter()
    app.label_paths([target], "class 0" if review.label(len(review.paths) // 2) != "class 0"
                    else "class 1")  # fmt: skip
    wait(lambda: state["shown"] > shown, 300)
    relabel_s = time.perf_counter() - t_fix
    wait(lambda: state["projected"] > projected, 5)
    settle = time.perf_counter() + 0.5
    wait(lambda: time.perf_counter() > settle)
    mark("end")

    print(f"grid rows: {rows_shown:,}; time to a usable window (every row in the grid): "
          f"{usable:.2f} s; session over the embeddings ready: {session_s:.1f} s; "
          f"plot sample projected: {plot_s:.1f} s; a correction re-labeled every row and showed "
          f"it in {relabel_s:.2f} s; a lasso selected {lassoed:,} images (all drawn) in "
          f"{lasso_s:.2f} s")  # fmt: skip
    times = np.array(beats)
    gaps = np.diff(times) * 1000
    for (name, start), (_, end) in itertools.pairwise(marks):
        ending = (times[1:] > start) & (times[1:] <= end)  # a gap counts where it ends
        worst = gaps[ending].max() if ending.any() else float("nan")
        print(f"  {name:>10}: {end - start:7.2f} s, longest GUI stall {worst:7.0f} ms")
    print(f"memory after opening: {memory[0]:.0f} MB resident (peak {memory[1]:.0f} MB); "
          f"at the end: {rss_mb()[0]:.0f} MB (peak {rss_mb()[1]:.0f} MB)")  # fmt: skip
    if sampler is not None:
        sampler.stop()
        sampler.report(times, gaps, args.stalls)
    app.shutdown()


if __name__ == "__main__":
    main()
