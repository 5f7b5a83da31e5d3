"""``fewshot-gui evaluate DATA_DIR …``: N-way K-shot accuracy, 95% interval and calibration."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("data_dir", metavar="DATA_DIR", help="class folders (or group/class folders, as Omniglot)")
    add("--encoder", required=True, metavar="NAME|CKPT", help="registered encoder or checkpoint")
    from fewshot_gui.adapters.registry import adapter_names

    add("--method", default="metric", help=f"adapter method: {', '.join(adapter_names())}")
    add("--way", type=int, default=5)
    add("--shot", type=int, default=1)
    add("--query", type=int, default=15)
    add("--episodes", type=int, default=600)
    add("--seed", type=int, default=0)
    add(
        "--split",
        choices=("auto", "all", "val", "train"),
        default="auto",
        help="classes to use; auto: the checkpoint's held-out classes on its own data set, "
        "the classes it was not trained on elsewhere (all of a data set it never saw)",
    )
    add("--classes-from", metavar="CKPT:val", help="use the val (or train) classes of CKPT")
    add(
        "--adapt",
        choices=("full", "head"),
        help="maml/fomaml: inner loop over the whole encoder on images, or the head (default: "
        "as the checkpoint was trained)",
    )
    add(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="adapter option, e.g. distance=euclidean (repeatable)",
    )
    add("--json", action="store_true", help="print exactly one JSON object on stdout")
    add(
        "--quiet",
        action="store_true",
        help="no progress on standard error (a bar on a terminal, else a line every 10 %% or 10 s)",
    )
    add("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder")
    parser.add_argument("--no-cache", action="store_true", help="embed without the on-disk cache")
    parser.add_argument(
        "--no-route",
        action="store_true",
        help="ignore the checkpoint's domain gate: always use its tuned features (by default an "
        "episode whose examples do not look like the tuning domain uses the base features, as "
        "labeling does)",
    )
    _configure_folder_like(parser)


def _configure_folder_like(parser: argparse.ArgumentParser) -> None:
    """Transductive refinement and episodes like real folders (issue 15.3)."""
    add = parser.add_argument
    add(
        "--transductive",
        action="store_true",
        help="refine the prototypes on the episode's queries (metric family), as labeling does",
    )
    add(
        "--imbalance",
        type=float,
        default=1.0,
        metavar="R",
        help="query counts per class differ by up to the ratio R (default 1: balanced)",
    )
    add(
        "--distractors",
        type=int,
        default=0,
        metavar="N",
        help="add N query images of classes outside the episode (in no accuracy)",
    )
    add(
        "--max-per-class",
        type=int,
        default=None,
        metavar="N",
        help="use the first N images of each class",
    )


def _options(pairs: list[str]) -> dict[str, Any]:
    from fewshot_gui.core.errors import UsageError

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option takes KEY=VALUE, not {pair!r}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def _names(result: dict[str, Any], most: int = 6) -> str:
    """The classes used, by group when they have groups (Omniglot alphabets): a short list."""
    names = result["class_groups"]
    if len(names) == len(result["class_names"]):
        names = result["class_names"]
    shown = ", ".join(names[:most]) + (f", … ({len(names)} in all)" if len(names) > most else "")
    return shown


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.commands._progress import ProgressLine
    from fewshot_gui.core.types import Progress
    from fewshot_gui.training.evaluate import EvalConfig, evaluate

    config = EvalConfig(
        data_dir=args.data_dir,
        encoder=args.encoder,
        method=args.method,
        way=args.way,
        shot=args.shot,
        query=args.query,
        episodes=args.episodes,
        seed=args.seed,
        split=args.split,
        classes_from=args.classes_from,
        adapt=args.adapt,
        options=_options(args.option),
        device=args.device,
        threads=args.threads,
        use_cache=not args.no_cache,
        cache_dir=args.cache_dir,
        route=not args.no_route,
        transductive=args.transductive,
        imbalance=args.imbalance,
        distractors=args.distractors,
        max_per_class=args.max_per_class,
    )
    progress = ProgressLine(sys.stderr, unit="img", lines=True)
    progress.enabled = progress.enabled and not args.quiet
    result: dict[str, Any] = {}
    try:
        for item in evaluate(config):
            if isinstance(item, Progress):
                progress.update(item)
            else:
                result = item
    finally:
        progress.close()
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['method']} on {result['encoder']}: {result['way']}-way "
            f"{result['shot']}-shot accuracy {result['accuracy']:.2%} ± {result['ci95']:.2%} "
            f"(95% interval, {result['episodes']} episodes), ECE {result['ece']:.3f}"
        )
        if (
            result.get("transductive")
            or result.get("imbalance", 1) > 1
            or result.get("distractors")
        ):
            refined = "prototypes refined on the queries" if result["transductive"] else "inductive"
            print(
                f"episodes: class sizes up to {result['imbalance']:g}x apart, "
                f"{result['distractors']} distractors; {refined}"
            )
        print(f"classes: {result['classes']}: {_names(result)}")
        if result.get("episodes_on_base_features") is not None:
            print(
                f"domain gate: {result['episodes_on_base_features']} of {result['episodes']} "
                "episodes used the base (ImageNet) features"
            )
    return 0
