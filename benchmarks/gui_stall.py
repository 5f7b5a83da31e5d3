"""GUI-thread stalls of the real app while it loads the model and labels a folder.

Runs the desktop app in this process (offscreen unless ``--display``), with the real labeling
worker and session and a fresh embedding cache, and a 5 ms heartbeat ``QTimer`` on the GUI thread.
A stall is the gap between two heartbeats (5 ms when nothing blocks the GUI thread). Phases:

* ``startup``: from ``show()`` until the worker has imported the engine and the embedding view
  is built (both start right after the window shows);
* ``idle``: the shown app doing nothing (the baseline);
* ``setup``: the classes and their examples added at once (as many drops in one go);
* ``model load``: from pressing "Label folder" until the first image batch is labeled
  (encoder load, the examples embedded, the adapter fitted);
* ``labeling``: until the worker reports the job done;
* ``plot``: until the embedding view has drawn the projected points.

The labeled folder is a temporary folder of symlinks to ``--images`` images of a folder of class
sub-folders (``/work/shared/datasets/flowers102`` when present, else drawn images); ``--classes``
classes get ``--shots`` examples each. ``--trace`` also lists GUI-thread events over 20 ms and
garbage-collector pauses over 10 ms (what stalled).

    python benchmarks/gui_stall.py                     # 2,000 flowers, 5 classes x 3 examples
    python benchmarks/gui_stall.py --images 500 --trace
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

FLOWERS = Path("/work/shared/datasets/flowers102")
EXTENSIONS = {".jpg", ".jpeg", ".png"}
STALL_MS = 50.0


def class_folders(root: Path) -> dict[str, list[Path]]:
    """``{class: sorted image paths}`` for the sub-folders of ``root`` that hold images."""
    out = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
        if images:
            out[folder.name] = images
    return out


def draw_images(root: Path, classes: int, per_class: int) -> dict[str, list[Path]]:
    """Drawn stand-ins for a dataset (the shared synthetic maker: colour and stripes per class)."""
    from fewshot_gui.bench.synthetic import make_class_folders

    return make_class_folders(root, classes, per_class, size=(320, 240), ext=".jpg")


def prepare(
    source: Path, work: Path, images: int, classes: int, shots: int
) -> tuple[Path, dict[str, list[str]]]:
    """A folder of ``images`` symlinks (round-robin over all classes) and the examples per class."""
    if source.is_dir():
        by_class = class_folders(source)
    else:
        print(f"{source} not found: drawing {images} images instead")
        by_class = draw_images(work / "drawn", max(classes, 10), images // max(classes, 10) + shots)
    names = list(by_class)
    step = max(1, len(names) // classes)
    chosen = names[::step][:classes]
    support = {name: [str(p) for p in by_class[name][:shots]] for name in chosen}
    pools = [by_class[n][shots:] if n in chosen else list(by_class[n]) for n in names]
    folder = work / "folder"
    taken, k = 0, 0
    while taken < images and any(k < len(pool) for pool in pools):
        for name, pool in zip(names, pools, strict=True):
            if k < len(pool) and taken < images:
                link = folder / name / pool[k].name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(pool[k])
                taken += 1
        k += 1
    return folder, support


class Recorder:
    """Heartbeat times, phase marks and (with ``trace``) long GUI events and GC pauses."""

    def __init__(self) -> None:
        self.beats: list[float] = []
        self.marks: list[tuple[str, float]] = []
        self.none_refs: list[tuple[str, int]] = []  # references to None at each mark
        self.events: list[tuple[float, float, str]] = []  # start, seconds, what
        self.gc_pauses: list[tuple[float, float, int, str]] = []  # start, seconds, gen, thread
        self.samples: list[tuple[float, str]] = []  # time, the GUI thread's Python stack
        self._gc_start: dict[int, float] = {}
        self._sampling = False

    def start_sampling(self, thread: int, every: float = 0.004) -> None:
        """Sample ``thread``'s Python stack every ``every`` seconds (innermost frames first)."""
        self._sampling = True

        def sample() -> None:
            while self._sampling:
                time.sleep(every)
                frame = sys._current_frames().get(thread)
                stack = []
                while frame is not None and len(stack) < 4:
                    code = frame.f_code
                    stack.append(f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name}")
                    frame = frame.f_back
                self.samples.append((time.perf_counter(), " < ".join(stack)))

        threading.Thread(target=sample, name="stack-sampler", daemon=True).start()

    def stop_sampling(self) -> None:
        self._sampling = False

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))
        self.none_refs.append((name, sys.getrefcount(None)))

    def gc_callback(self, phase: str, info: dict) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._gc_start[ident] = time.perf_counter()
        elif ident in self._gc_start:
            start = self._gc_start.pop(ident)
            took = time.perf_counter() - start
            if took > 0.010:
                name = threading.current_thread().name
                self.gc_pauses.append((start, took, info["generation"], name))

    def phases(self) -> list[tuple[str, float, float]]:
        return [
            (name, start, self.marks[k + 1][1])
            for k, (name, start) in enumerate(self.marks[:-1])
            if name != "end"
        ]


def make_application(trace: Recorder | None):
    """A QApplication; with ``trace`` one that times every event it delivers on the GUI thread."""
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    if existing is not None:
        return existing
    if trace is None:
        return QApplication([sys.argv[0]])

    gui_thread = threading.get_ident()

    class TimedApplication(QApplication):
        def notify(self, receiver, event) -> bool:
            if threading.get_ident() != gui_thread:
                return super().notify(receiver, event)
            started = time.perf_counter()
            try:
                return super().notify(receiver, event)
            finally:
                took = time.perf_counter() - started
                if took > 0.020:
                    what = f"{type(receiver).__name__} {event.type().name}"
                    trace.events.append((started, took, what))

    return TimedApplication([sys.argv[0]])


def summarise(rec: Recorder, t0: float) -> None:
    beats = np.asarray(rec.beats)
    print(
        f"\n{'phase':<11} {'seconds':>8} {'beats':>6} {'max ms':>7} {'p99 ms':>7} "
        f"{'p99.9 ms':>8} {'>50 ms':>6}"
    )
    for name, start, end in rec.phases():
        inside = beats[(beats >= start) & (beats <= end)]
        gaps = np.diff(np.concatenate([[start], inside, [end]])) * 1000 if len(inside) else []
        if not len(gaps):
            print(f"{name:<11} {end - start:8.2f} {'(no beats)':>6}")
            continue
        print(
            f"{name:<11} {end - start:8.2f} {len(inside):6d} {np.max(gaps):7.1f} "
            f"{np.percentile(gaps, 99):7.1f} {np.percentile(gaps, 99.9):8.1f} "
            f"{int(np.sum(gaps > STALL_MS)):6d}"
        )
    gaps = np.diff(beats)
    worst = np.argsort(gaps)[::-1][:8]
    phase_of = {}
    for name, start, end in rec.phases():
        for k in worst:
            if start <= beats[k] < end:
                phase_of[k] = name
    print("\nlongest stalls (ms @ s since show, phase):")
    for k in worst:
        start = beats[k]
        print(f"  {gaps[k] * 1000:6.1f} @ {start - t0:7.2f}  {phase_of.get(k, '-')}")
        for s, took, what in rec.events:
            if s < beats[k + 1] and s + took > start:
                print(f"           event {took * 1000:6.1f} ms: {what}")
        for s, took, gen, thread in rec.gc_pauses:
            if s < beats[k + 1] and s + took > start:
                print(f"           gc gen{gen} {took * 1000:6.1f} ms in {thread}")
        stacks = Counter(st for t, st in rec.samples if start < t < beats[k + 1])
        for stack, count in stacks.most_common(3):
            print(f"           {count:3d} samples: {stack}")
    if rec.gc_pauses:
        longest = max(rec.gc_pauses, key=lambda p: p[1])
        print(
            f"\ngc pauses > 10 ms: {len(rec.gc_pauses)}, longest {longest[1] * 1000:.0f} ms "
            f"(gen{longest[2]}, {longest[3]})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=FLOWERS, help="folder of class folders")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--method", default="auto")
    parser.add_argument("--encoder", default="", help="encoder name (default: the app's)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle baseline")
    parser.add_argument("--display", action="store_true", help="use $DISPLAY, not offscreen")
    parser.add_argument("--trace", action="store_true", help="name what stalled")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--switch-interval", type=float, default=None, help="GIL switch interval (s) to try"
    )
    args = parser.parse_args()
    if not args.display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # offscreen size-hint notes
    work = Path(tempfile.mkdtemp(prefix="gui-stall-"))
    folder, support = prepare(args.source, work, args.images, args.classes, args.shots)

    rec = Recorder()
    gc.callbacks.append(rec.gc_callback)
    qt_app = make_application(rec if args.trace else None)
    if args.trace:
        rec.start_sampling(threading.get_ident())
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer

    from fewshot_gui.app import AppController, start_app
    from fewshot_gui.ui.settings import AppSettings

    settings = AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(lambda: rec.beats.append(time.perf_counter()))
    heartbeat.start()

    loop = QEventLoop()
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    deadline.start(int(args.timeout * 1000))

    def wait(ready) -> None:
        """Run the event loop until ``ready()`` (checked every 5 ms)."""
        poll = QTimer()
        poll.timeout.connect(lambda: ready() and loop.quit())
        poll.start(5)
        loop.exec()
        poll.stop()

    t0 = time.perf_counter()
    rec.mark("startup")
    controller: AppController = start_app(
        settings=settings,
        thumbnail_cache=str(work / "thumbnails"),
        session_options={"cache_dir": str(work / "cache")},
    )
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    print(f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms")
    worker = controller.worker.worker
    state = {"choices": False, "labeling": False, "done": False, "projected": False}
    worker.choicesReady.connect(lambda *_: state.update(choices=True))
    worker.progress.connect(
        lambda p: p.stage == "labeling" and p.done > 0 and state.update(labeling=True)
    )
    worker.predictions.connect(lambda _p: state.update(labeling=True))
    controller.jobDone.connect(lambda _j, s: state.update(done=s))
    wait(lambda: state["choices"] and controller.window.plot_if_ready() is not None)
    controller.window.plot.projected.connect(lambda _m: state.update(projected=True))
    rec.mark("idle")
    idle_until = time.perf_counter() + args.idle
    wait(lambda: time.perf_counter() >= idle_until)

    rec.mark("setup")
    for name, paths in support.items():
        controller.add_class(name)
        controller.state.add_examples(name, paths)
    controls = controller.window.controls
    controls.apply_settings({"method": args.method, "encoder": args.encoder})
    controls.folder.setText(str(folder))
    settled = time.perf_counter() + 0.5
    wait(lambda: time.perf_counter() >= settled)  # the class cards' thumbnails
    rec.mark("model load")
    started = time.perf_counter()
    if not controller.start():
        raise SystemExit(f"could not start: {controller.window.status.text()}")
    wait(lambda: state["labeling"] or state["done"])
    rec.mark("labeling")
    wait(lambda: bool(state["done"]))
    labeled = time.perf_counter() - started
    rec.mark("plot")
    wait(lambda: state["projected"])
    settle = time.perf_counter() + 0.3
    wait(lambda: time.perf_counter() >= settle)
    rec.mark("end")
    heartbeat.stop()
    rec.stop_sampling()
    model = controller.window.grid.model
    print(
        f"{len(model.paths):,} images, {len(support)} classes x {args.shots} examples, "
        f"job {state['done']} in {labeled:.1f} s on {controller.window.device.text() or '?'} "
        f"({controller.window.controls.settings()['method']})"
    )
    summarise(rec, t0)
    print(
        "references to None at each phase start:", ", ".join(f"{n} {r:,}" for n, r in rec.none_refs)
    )
    controller.shutdown()
    del qt_app


if __name__ == "__main__":
    main()
