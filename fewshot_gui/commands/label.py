"""``fewshot-gui label SUPPORT_DIR IMAGES_DIR``: label a folder from a few examples per class.

Writes a CSV with one row per image file found: ``path, label, confidence, error``, then one
probability column per class, then ``unknown_score``. Exit 0 when the run completed (failed files
are rows with an error).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fewshot_gui.commands._progress import ProgressLine
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure, Predictions, Progress

if TYPE_CHECKING:
    from fewshot_gui.session import LabelingSession


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "support_dir", help="folder with one sub-folder of example images per class"
    )
    parser.add_argument("images_dir", help="folder of images to label (scanned recursively)")
    parser.add_argument(
        "--out",
        default=None,
        help="CSV file to write (default labels.csv); with --engine ray, the result folder "
        "(default labels-result; a re-run with the same folder resumes)",
    )
    parser.add_argument(
        "--method", default="auto", help="adaptation method (default auto: chosen per task)"
    )
    parser.add_argument("--encoder", default=None, help="encoder name or checkpoint path")
    parser.add_argument(
        "--unknown-threshold",
        type=_threshold,
        default=None,
        metavar="auto|S|off",
        help="label 'unknown' when the image's unknown_score is above S (0-1); auto: chosen from "
        "the examples so that about 95%% of images of your classes keep their label; off: never "
        "(default 0.999: only images clearly far from every class)",
    )
    parser.add_argument(
        "--transductive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refine the class prototypes with the folder's images (metric and auto; on by "
        "default)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    parser.add_argument(
        "--triplet",
        action="store_true",
        help="metric method: fine-tune a projection head with the triplet loss",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _configure_engine(parser)


def _configure_engine(parser: argparse.ArgumentParser) -> None:
    """``--engine ray`` and its options (``fewshot_gui/cluster``)."""
    group = parser.add_argument_group("cluster (--engine ray; pip install 'fewshot-gui[cluster]')")
    group.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="where to run (default local)"
    )
    group.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    group.add_argument("--embeddings", action="store_true", help="store fp16 embeddings (review)")
    group.add_argument("--csv", action="store_true", help="also write OUT/labels.csv")
    group.add_argument("--actors", type=int, default=None, help="encoder actors (default: auto)")
    group.add_argument("--actor-cpus", type=int, default=None, help="CPU threads per CPU actor")
    group.add_argument("--batch-size", type=int, default=None, help="images per actor call")
    group.add_argument(
        "--shard-rows", type=int, default=100_000, help="rows per Parquet shard (default 100000)"
    )


def _threshold(text: str) -> float | str:
    """``auto``, ``off`` or a score in [0, 1] (argparse type)."""
    from fewshot_gui.adapters.open_set import resolve_threshold

    word = text.strip().lower()
    try:
        return word if word in ("auto", "off") else float(resolve_threshold(text) or 0.0)
    except ValueError:
        message = f"expected auto or a number in [0, 1], not {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def support_examples(support_dir: str | Path) -> tuple[dict[str, list[str]], list[str]]:
    """Class name → example image paths, from one sub-folder per class, and one plain line for
    each thing found there but not used (empty class, loose image, FIFO, …).

    Raises UsageError when there is no class, no class has an image, or a class folder's name
    cannot be a class name (e.g. ``unknown``, reserved for images that match no class).
    """
    from fewshot_gui.core.names import class_name_problem
    from fewshot_gui.data.folder import scan_classes

    found = scan_classes(support_dir)
    if not found.classes:
        raise UsageError(f"{support_dir} has no class sub-folders (one sub-folder per class)")
    for name in found.classes:
        problem = class_name_problem(name)
        if problem:
            raise UsageError(f"{problem} (class folder {Path(support_dir, name)})")
    examples = {name: [r.path for r in rs] for name, rs in found.classes.items() if rs}
    if not examples:
        raise UsageError(f"no class in {support_dir} has an example image")
    notes = [
        f"class {name!r} has no readable example image: skipped"
        for name, rs in found.classes.items()
        if not rs
    ]
    notes += [f"not used: {f.path} ({f.reason})" for f in found.skipped]
    if found.hidden:
        notes.append(f"{found.hidden} hidden name(s) in the support folder passed over")
    return examples, notes


def _print_notes(notes: list[str], limit: int = 10) -> None:
    for note in notes[:limit]:
        print(f"  {note}", file=sys.stderr)
    if len(notes) > limit:
        print(f"  … and {len(notes) - limit} more", file=sys.stderr)


def write_csv(
    path: str | Path, predictions: Predictions, failures: list[FileFailure], order: list[str]
) -> None:
    """Write the labels CSV atomically, rows in scan order (``data/labels_csv.py``)."""
    from fewshot_gui.data.labels_csv import LabelRow, write_labels

    index = {p: i for i, p in enumerate(predictions.paths)}
    failed = {f.path: f.reason for f in failures}
    rows = []
    for p in order:
        if p in index:
            i = index[p]
            probs = tuple(float(v) for v in predictions.probabilities[i])
            conf = float(predictions.confidences[i])
            scores = predictions.unknown_scores
            unknown = float(scores[i]) if len(scores) else None
            rows.append(
                LabelRow(p, predictions.labels[i], conf, probabilities=probs, unknown_score=unknown)
            )
        else:
            rows.append(LabelRow(p, "", None, error=failed.get(p, "not processed")))
    write_labels(path, rows, predictions.classes)


def _is_same(path: str, target: Path) -> bool:
    """True when ``path`` is the file ``target`` (cheap: only same-named paths are resolved)."""
    return os.path.basename(path) == target.name and os.path.realpath(path) == os.path.realpath(
        target
    )


def session_for(args: argparse.Namespace) -> LabelingSession:
    """The labeling session the options ask for (also the ray engine's driver session)."""
    from fewshot_gui.session import LabelingSession

    options = {"triplet": True} if args.triplet else {}
    return LabelingSession(
        encoder=args.encoder,
        method=args.method,
        device=args.device,
        cache_dir=args.cache_dir,
        unknown_threshold=args.unknown_threshold,
        adapter_options=options,
        use_cache=not args.no_cache,
        transductive=args.transductive,
    )


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.commands._output import check_output_file
    from fewshot_gui.data.folder import scan

    if getattr(args, "engine", "local") == "ray":
        from fewshot_gui.cluster import require_ray

        require_ray()  # one line, exit 2, before anything that needs Ray or pyarrow is imported
        from fewshot_gui.cluster.driver import run as run_on_ray

        return run_on_ray(args)
    args.out = args.out or "labels.csv"
    # every input and the output are checked before torch is imported and the model loads
    examples, support_notes = support_examples(args.support_dir)
    found = scan(args.images_dir)
    records = found.records
    inputs = {"images folder": args.images_dir, "support folder": args.support_dir}
    out = check_output_file(args.out, inputs)
    skipped = [f for f in found.skipped if not _is_same(f.path, out)]  # our own earlier CSV
    _print_notes(support_notes)

    from fewshot_gui.session import BatchResult

    session = session_for(args)
    bar = ProgressLine() if not args.quiet else ProgressLine(force=False)
    bar.enabled = bar.enabled and not args.quiet
    start = time.perf_counter()
    for item in session.set_support(examples):
        bar.update(item)
    failures: list[FileFailure] = []
    for item in session.label(records):
        if isinstance(item, Progress):
            bar.update(item)
        elif isinstance(item, BatchResult):
            failures.extend(item.failures)
    bar.close()
    for line in session.take_warnings():  # a damaged or unwritable cache, NaN embeddings
        print(f"warning: {line}", file=sys.stderr)
    predictions = session.predictions()
    order = sorted([r.path for r in records] + [f.path for f in skipped])
    write_csv(out, predictions, failures + skipped, order)
    elapsed = time.perf_counter() - start
    if not args.quiet:
        counts: dict[str, int] = {}
        for label in predictions.labels:
            counts[label] = counts.get(label, 0) + 1
        summary = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
        print(
            f"labeled {len(predictions.paths)} of {len(records)} images in {elapsed:.1f} s "
            f"({session.embedded_count} embedded, the rest from the cache) on "
            f"{session.device_name} with {session.encoder_name} + {session.method_description}; "
            f"{len(failures)} failed",
            file=sys.stderr,
        )
        if summary:
            print(f"  {summary}", file=sys.stderr)
        if skipped:
            print(
                f"  {len(skipped)} path(s) found but not used (FIFO, broken link, not an image "
                "format, …): rows with the reason in the error column",
                file=sys.stderr,
            )
        if found.hidden:
            hidden = f"{found.hidden} hidden name(s) (starting with '.') passed over"
            print(f"  {hidden}", file=sys.stderr)
        for name in examples:
            if name not in session.classes:
                print(
                    f"  class {name!r} skipped: none of its examples could be read", file=sys.stderr
                )
        print(f"wrote {out}", file=sys.stderr)
    session.close()
    return 0
