"""``fewshot-gui demo``: label the built-in demo images headlessly, print how many labels are
right (counted against the demo's true classes), then review a few as a user would — least
confident first, a wrong label corrected, a right one accepted — and print the count again."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

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
    parser.add_argument(
        "--corrections",
        type=int,
        default=2,
        help="review least confident first until this many labels were corrected (default 2)",
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


@dataclass
class Review:
    """What a short review did: images looked at, labels corrected, labels right after it."""

    checked: int = 0
    corrected: int = 0
    right: int = 0


def review(session, truth: dict[str, str], corrections: int) -> Review:
    """Review the least confident images first, as in the app: a wrong label is corrected (the
    image joins the examples), a right one accepted (Enter: it joins too), until ``corrections``
    labels were corrected or every image was checked. The labels re-computed after each step."""
    from fewshot_gui.data.demo import count_right

    done = Review()
    seen: set[str] = set()
    predictions = session.predictions()
    while done.corrected < corrections:
        confidence = dict(zip(predictions.paths, predictions.confidences, strict=True))
        label = dict(zip(predictions.paths, predictions.labels, strict=True))
        todo = [p for p in sorted(confidence, key=confidence.__getitem__) if p not in seen]
        if not todo:
            break
        path = todo[0]
        seen.add(path)
        done.checked += 1
        done.corrected += label[path] != truth[path]
        predictions = session.add_example(path, truth[path], reviewed=True)
    labels = dict(zip(predictions.paths, predictions.labels, strict=True))
    done.right = count_right(truth, {**labels, **{p: truth[p] for p in seen}})
    return done


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
    rows, overall = summary_table(demo.truth, labels)
    total = len(demo.truth)
    print(f"demo: {total} images in {demo.unlabeled}")
    print(
        f"encoder {session.encoder_name}, {session.method_description}, {session.device_name}, "
        f"{sum(len(v) for v in demo.examples.values())} examples, {took:.1f} s"
    )
    print("\n".join(rows))
    print(f"first labeling: {round(overall * total)} of {total} labels right ({overall:.1%})")
    if failures:
        print(f"{failures} file(s) failed")
    if args.corrections > 0 and round(overall * total) < total:
        done = review(session, demo.truth, args.corrections)
        print(
            f"after reviewing {done.checked} images least confident first and correcting "
            f"{done.corrected}: {done.right} of {total} labels right ({done.right / total:.1%})"
        )
    session.close()
    return 0
