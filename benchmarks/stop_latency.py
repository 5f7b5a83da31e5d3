"""How long Stop takes: label a folder through the app's worker, press Stop after the first
predictions, time until the worker says the job ended (median and worst over several presses).

    python benchmarks/stop_latency.py FOLDER_OF_IMAGES [--presses 5] [--encoder NAME]

The embedding cache is a fresh temporary folder, so every image goes through the model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--presses", type=int, default=5)
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--examples", type=int, default=2, help="per class (class = sub-folder)")
    parser.add_argument(
        "--delay-ms", type=int, default=337, help="Stop is pressed this long after predictions"
    )
    args = parser.parse_args(argv)

    from fewshot_gui.data.folder import scan_folder
    from fewshot_gui.workers.labeling import LabelingController

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])  # noqa: F841
    root = Path(args.folder)
    support = {
        d.name: [r.path for r in scan_folder(d)[: args.examples]]
        for d in sorted(root.iterdir())
        if d.is_dir()
    }
    controller = LabelingController()
    worker = controller.worker
    state = {"first": False, "pressed": 0.0}
    latencies: list[float] = []
    loop = QEventLoop()

    def run() -> None:  # a fresh cache each time: every image goes through the model
        state.update(first=False, pressed=0.0)
        cache = tempfile.mkdtemp(prefix="stop-latency-")
        settings = {"encoder": args.encoder or "", "method": "metric", "cache_dir": cache}
        controller.start(settings, support, str(root))

    def poll() -> None:  # GUI thread: press Stop a while after the first predictions
        if state["first"] and not state["pressed"]:
            state["pressed"] = time.perf_counter()
            controller.cancel()

    def finished(_job: int, status: str) -> None:
        if state["pressed"]:
            latencies.append(time.perf_counter() - state["pressed"])
            print(f"stop {len(latencies)}: {latencies[-1] * 1000:.0f} ms ({status})", flush=True)
        if len(latencies) >= args.presses:
            loop.quit()
        else:
            QTimer.singleShot(100, run)

    worker.predictions.connect(lambda _p: state.update(first=True))
    worker.jobFinished.connect(finished)
    worker.error.connect(lambda text: print("error:", text, file=sys.stderr))
    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(args.delay_ms)
    run()
    loop.exec()
    controller.stop()
    print(
        f"Stop → job ended: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"worst {max(latencies) * 1000:.0f} ms over {len(latencies)} presses"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
