"""``fewshot-gui bench``: decode-only, model-only and end-to-end throughput side by side in one run,
re-label latency per method at 1k / 10k / 100k cached embeddings, and peak memory.

All figures come from this one process on this machine, so their ratios are meaningful even on a
noisy machine. With ``--json`` standard output is one JSON object. The measurements themselves are
in :mod:`fewshot_gui.bench`; this module parses the options and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from fewshot_gui.core.errors import UsageError

RELABEL_SIZES = (1_000, 10_000, 100_000)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoder", default="efficientnet-lite0", help="encoder name or checkpoint"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--images", type=int, default=1000, help="synthetic JPEGs to make")
    source.add_argument("--folder", default=None, help="benchmark on this folder instead")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="same architecture and preprocessing with random weights (throughput only; "
        "nothing downloaded)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="stop each throughput measurement after about this many seconds",
    )
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated adapters for the re-label figures (default: all)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure decode, model and end to end in turn this many times; medians are "
        "reported (a shared machine's load drifts between measurements)",
    )
    parser.add_argument("--relabel-sizes", default=",".join(map(str, RELABEL_SIZES)))
    parser.add_argument("--skip-relabel", action="store_true")
    parser.add_argument(
        "--memory-check",
        type=int,
        default=None,
        metavar="N",
        help="only label N tiny images with a small random Conv-4 and report the peak resident "
        "memory growth (e.g. 100000)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on standard output")


def _memory_check(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    from fewshot_gui.bench.memory import memory_check, peak_rss_mb
    from fewshot_gui.core.device import plan_device

    if args.memory_check < 2:
        raise UsageError("--memory-check needs at least 2 images")
    result = {
        "machine": plan_device(args.device).name,
        **memory_check(args.memory_check, args.device, log),
    }
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def _throughput(args: argparse.Namespace, encoder: str, log: Any) -> dict[str, Any]:
    from fewshot_gui.bench.synthetic import make_photos
    from fewshot_gui.bench.throughput import measure_throughput
    from fewshot_gui.data.folder import scan_folder

    if args.rounds < 1:
        raise UsageError("--rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as tmp:
        if args.folder:
            folder = Path(args.folder)
        else:
            folder = Path(tmp) / "photos"
            log(f"making {args.images} synthetic 500×375 JPEGs …")
            make_photos(folder, args.images)
        records = scan_folder(folder)
        if len(records) < 2:
            raise UsageError(f"{folder} holds fewer than 2 images")
        result = measure_throughput(
            encoder, args.device, records, Path(tmp), args.rounds, args.time_limit, log
        )
    log(f"decode only   {result['decode_only_img_s']:8.1f} img/s")
    log(f"model only    {result['model_only_img_s']:8.1f} img/s")
    log(
        f"end to end    {result['end_to_end_img_s']:8.1f} img/s  "
        f"(ratio to min(decode, model): {result['ratio']:.2f})"
    )
    return result


def _relabel(args: argparse.Namespace, encoder: str, dim: int, log: Any) -> dict[str, Any]:
    from fewshot_gui.adapters.registry import adapter_names
    from fewshot_gui.bench.relabel import adapter_states, bench_relabel, size_key

    methods = args.methods.split(",") if args.methods else adapter_names()
    sizes = [int(s) for s in args.relabel_sizes.split(",")]
    relabel = bench_relabel(methods, sizes, dim, adapter_states(encoder, methods))
    result = {}
    for size in sizes:
        key = size_key(size)
        result[f"relabel_ms_{key}"] = {m: round(v[key], 2) for m, v in relabel.items()}
        log(
            f"re-label at {key:>4}: "
            + ", ".join(f"{m} {v[key]:.1f} ms" for m, v in relabel.items())
        )
    return result


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.bench.encoders import random_weights_encoder
    from fewshot_gui.bench.memory import peak_rss_mb

    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    if args.memory_check is not None:
        result = _memory_check(args, log)
    else:
        encoder = random_weights_encoder(args.encoder) if args.random_weights else args.encoder
        result = _throughput(args, encoder, log)
        dim = result.pop("embed_dim")
        result = {"machine": result.pop("machine"), "encoder": args.encoder, **result}
        result["random_weights"] = bool(args.random_weights)
        if not args.skip_relabel:
            result.update(_relabel(args, encoder, dim, log))
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        log(f"peak resident memory {result['peak_rss_mb']:.0f} MB")
    if args.json:
        print(json.dumps(result))
    return 0
