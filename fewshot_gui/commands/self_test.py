"""``fewshot-gui self-test``: build the main window offscreen, run one adaptation on the demo
images through the labeling worker, check that predictions arrive, print a summary, exit 0.

The packaged build's smoke test. Exit status 1 with a plain message when anything fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", default=None, help="encoder name (default: the app's default)")
    parser.add_argument(
        "--method", default="auto", help="adaptation method (default auto: chosen per task)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for predictions (default 300)"
    )


def run(args: argparse.Namespace) -> int:
    if "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    started = time.perf_counter()
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from fewshot_gui.app import AppController
    from fewshot_gui.data.demo import ensure_demo
    from fewshot_gui.ui.settings import AppSettings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from PySide6.QtCore import QSettings

    scratch = QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, "fewshot-gui", "self-test"
    )
    options = {"device": args.device}
    controller = AppController(settings=AppSettings(scratch), session_options=options)
    controller.window.show()
    app.processEvents()
    window_s = time.perf_counter() - started
    torch_at_window = "torch" in sys.modules
    demo = ensure_demo()
    if not controller.open_project(str(demo.project)):
        print(f"self-test: FAILED: could not open the demo project {demo.project}")
        return 1
    controls = controller.window.controls
    controls.apply_settings({"method": args.method, "encoder": args.encoder or ""})
    outcome: dict[str, object] = {}
    loop = QEventLoop()
    worker = controller.worker.worker

    def finished(_job: int, status: str) -> None:
        # opening the project starts a pass over cached embeddings that Label cancels: only
        # the labeling job's end counts (nothing else cancels here; a hang ends at the timeout)
        if status != "cancelled":
            outcome.setdefault("status", status)
            loop.quit()

    worker.jobFinished.connect(finished)
    worker.error.connect(lambda message: outcome.setdefault("error", message))
    worker.deviceReady.connect(lambda name: outcome.setdefault("device", name))
    QTimer.singleShot(int(args.timeout * 1000), loop.quit)
    labeling_started = time.perf_counter()
    if not controller.start():
        print(f"self-test: FAILED: {controller.window.status.text()}")
        return 1
    loop.exec()
    took = time.perf_counter() - labeling_started
    model = controller.window.grid.model
    labels = {p: model.label(i) for i, p in enumerate(model.paths)}
    controller.shutdown()
    status = outcome.get("status")
    if status != "done" or len(labels) < len(demo.truth):
        reason = controller.window.messages.label.text() or (
            f"timed out after {args.timeout:.0f} s" if status is None else f"job {status}"
        )
        print(f"self-test: FAILED: {reason} ({len(labels)} of {len(demo.truth)} predictions)")
        return 1
    correct = sum(labels.get(p) == t for p, t in demo.truth.items())
    print(
        f"self-test: OK — window built offscreen in {window_s:.2f} s "
        f"(torch imported before the window: {torch_at_window}); "
        f"{len(labels)} demo images labeled through the worker in {took:.1f} s on "
        f"{controller.window.device.text() or '?'}; {correct}/{len(demo.truth)} match the drawn classes"
    )
    return 0
