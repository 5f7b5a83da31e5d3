"""Reopen a labeled project: time from ``open`` to every cached prediction shown in the grid.

    QT_QPA_PLATFORM=offscreen python benchmarks/reopen_cached.py FOLDER [--examples 2]

FOLDER holds one sub-folder per class; the first ``--examples`` images of each are the examples.
The folder is labeled once (filling a fresh embedding cache), saved as a project, then opened
(a) in the same window, whose worker keeps the loaded model, and (b) in a new window, whose
worker loads the model first. Nothing is decoded when reopening.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication


def _wait(signal, timeout_s: float = 600) -> tuple:
    loop, got = QEventLoop(), []
    signal.connect(lambda *args: (got.append(args), loop.quit()))
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    return got[0] if got else ()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--examples", type=int, default=2)
    args = parser.parse_args(argv)
    from fewshot_gui.app import AppController
    from fewshot_gui.data.folder import scan_folder
    from fewshot_gui.ui.settings import AppSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841
    work = Path(tempfile.mkdtemp(prefix="reopen-"))
    options = {"cache_dir": str(work / "cache"), "method": "metric"}

    def controller() -> AppController:
        settings = AppSettings(QSettings(str(work / "s.ini"), QSettings.Format.IniFormat))
        made = AppController(settings=settings, thumbnail_cache=None, session_options=options)
        made.project.ask_unsaved = lambda: "discard"
        return made

    first = controller()
    for d in sorted(Path(args.folder).iterdir()):
        if d.is_dir():
            first.add_class(d.name)
            first.state.add_examples(d.name, [r.path for r in scan_folder(d)[: args.examples]])
    first.window.controls.folder.setText(args.folder)
    started = time.perf_counter()
    first.start()
    _wait(first.jobDone)
    count = len(first.review.paths)
    print(f"labeled {count} images in {time.perf_counter() - started:.1f} s (fills the cache)")
    project = str(work / "p.fewshot")
    first.save_as(project)
    second = controller()
    for name, target in (("same window (model loaded)", first), ("new window", second)):
        target.review.clear()
        started = time.perf_counter()
        target.open_project(project)
        status = _wait(target.jobDone)
        took = time.perf_counter() - started
        shown = len(target.review.paths)
        print(f"reopen, {name}: {shown} predictions shown {took:.2f} s after open ({status[1]})")
    for made in (first, second):
        made.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
