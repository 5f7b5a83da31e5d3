"""``fewshot-gui demo``: label the built-in demo images headlessly and print accuracy per class."""

from __future__ import annotations

import argparse
import time

from fewshot_gui.commands._progress import ProgressLine


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--method", default="auto", help="adaptation method (default auto: chosen per task)"
    )
    parser.add_argument("--encoder", default=None, help="encoder name or checkpoint path")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--folder",
        default=None,
        help="where to draw the demo images (default: the user cache folder)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def summary_table(truth: dict[str, str], labels: dict[str, str]) -> tuple[list[str], float]:
    """Rows of a per-class accuracy table and the overall accuracy."""
    classes = sorted(set(truth.values()))
    rows = [f"{'class':<14} {'images':>6} {'correct':>7} {'accuracy':>8}"]
    total = correct = 0
    for name in classes:
        paths = [p for p, t in truth.items() if t == name]
        ok = sum(labels.get(p) == name for p in paths)
        rows.append(f"{name:<14} {len(paths):>6} {ok:>7} {ok / max(1, len(paths)):>8.1%}")
        total, correct = total + len(paths), correct + ok
    overall = correct / max(1, total)
    rows.append(f"{'all':<14} {total:>6} {correct:>7} {overall:>8.1%}")
    return rows, overall


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.core.types import Progress
    from fewshot_gui.data.demo import ensure_demo
    from fewshot_gui.session import BatchResult, LabelingSession

    demo = ensure_demo(args.folder)
    started = time.perf_counter()
    session = LabelingSession(encoder=args.encoder, method=args.method, device=args.device)
    progress = None if args.quiet else ProgressLine()
    for item in session.set_support(demo.examples):
        if progress is not None:
            progress.update(item)
    labels: dict[str, str] = {}
    failures = 0
    for item in session.label(demo.unlabeled):
        if isinstance(item, Progress) and progress is not None:
            progress.update(item)
        elif isinstance(item, BatchResult):
            labels.update(zip(item.predictions.paths, item.predictions.labels, strict=True))
            failures += len(item.failures)
    if progress is not None:
        progress.close()
    took = time.perf_counter() - started
    rows, _ = summary_table(demo.truth, labels)
    print(f"demo: {len(demo.truth)} images in {demo.unlabeled}")
    print(
        f"encoder {session.encoder_name}, method {args.method}, {session.device_name}, "
        f"{sum(len(v) for v in demo.examples.values())} examples, {took:.1f} s"
    )
    print("\n".join(rows))
    if failures:
        print(f"{failures} file(s) failed")
    session.close()
    return 0
