"""``fewshot-gui bench``: decode-only, model-only and end-to-end throughput side by side in one run,
re-label latency per method at 1k / 10k / 100k cached embeddings, and peak memory.

All figures come from this one process on this machine, so their ratios are meaningful even on a
noisy machine. With ``--json`` standard output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

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
        "--methods",
        default=None,
        help="comma-separated adapters for the re-label figures (default: all)",
    )
    parser.add_argument("--relabel-sizes", default=",".join(map(str, RELABEL_SIZES)))
    parser.add_argument("--skip-relabel", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object on standard output")


def make_photos(
    folder: Path, count: int, size: tuple[int, int] = (500, 375), seed: int = 0
) -> None:
    """Write ``count`` photo-like JPEGs (smooth colour fields plus texture and noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(count):
        coarse = rng.uniform(0, 255, size=(6, 8, 3)).astype(np.uint8)
        image = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, size=(h, w, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"photo_{i:06d}.jpg", quality=85
        )


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_decode(records: list, preprocessing: Any, plan: Any) -> float:
    from fewshot_gui.data.loader import iter_batches

    start, n = time.perf_counter(), 0
    for batch in iter_batches(
        records, preprocessing, plan.batch_size, plan.num_workers, pin_memory=plan.pin_memory
    ):
        n += len(batch.indices)
    return _rate(n, time.perf_counter() - start)


def bench_model(loaded: Any, plan: Any, count: int) -> float:
    import torch

    from fewshot_gui.core.device import inference

    prep = loaded.spec.preprocessing
    images = torch.randint(
        0, 256, (plan.batch_size, prep.channels, prep.crop, prep.crop), dtype=torch.uint8
    )
    images = images.pin_memory() if plan.pin_memory else images

    def step() -> None:
        with inference(plan):
            x = prep.normalize(plan.to_device(images))
            if plan.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loaded.model(x).float().cpu()

    step()  # warm-up (cudnn autotune, lazy init)
    batches = max(1, count // plan.batch_size)
    if plan.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    if plan.is_cuda:
        torch.cuda.synchronize()
    return _rate(batches * plan.batch_size, time.perf_counter() - start)


def bench_end_to_end(
    encoder: str, device: str, records: list, cache_dir: Path
) -> tuple[float, int]:
    from fewshot_gui.session import LabelingSession

    session = LabelingSession(encoder=encoder, device=device, cache_dir=cache_dir, use_cache=False)
    session.load()
    examples = {"a": [records[0].path], "b": [records[1].path]}
    for _ in session.set_support(examples):
        pass
    start = time.perf_counter()
    for _ in session.label(records):
        pass
    seconds = time.perf_counter() - start
    return _rate(len(session.predictions().paths), seconds), session.embedded_count


def bench_relabel(methods: list[str], sizes: list[int], dim: int, repeats: int = 5) -> dict:
    """Median ms to add one example and re-predict ``n`` cached embeddings, per method and size."""
    from fewshot_gui.adapters.registry import create_adapter

    rng = np.random.default_rng(0)
    classes, shots = 5, 5
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    support = np.repeat(centres, shots, axis=0) + 0.5 * rng.normal(size=(classes * shots, dim))
    labels = [f"class{i}" for i in range(classes) for _ in range(shots)]
    results: dict[str, dict[str, float]] = {}
    for n in sizes:
        queries = (centres[rng.integers(0, classes, n)] + 0.5 * rng.normal(size=(n, dim))).astype(
            np.float32
        )
        for method in methods:
            adapter = create_adapter(method).fit(support.astype(np.float32), labels)
            adapter.predict_proba(queries[:10])
            timings = []
            for r in range(repeats):
                example = queries[r]
                start = time.perf_counter()
                adapter.add_example(example, labels[r % len(labels)])
                adapter.predict_proba(queries)
                timings.append((time.perf_counter() - start) * 1000)
            results.setdefault(method, {})[f"{n // 1000}k"] = float(np.median(timings))
    return results


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.adapters.registry import adapter_names
    from fewshot_gui.core.device import plan_device
    from fewshot_gui.data.folder import scan_folder
    from fewshot_gui.encoders.registry import load_encoder

    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as tmp:
        if args.folder:
            folder = Path(args.folder)
        else:
            folder = Path(tmp) / "photos"
            log(f"making {args.images} synthetic 500×375 JPEGs …")
            make_photos(folder, args.images)
        records = scan_folder(folder)
        plan = plan_device(args.device)
        loaded = load_encoder(args.encoder, plan)
        plan = plan_device(args.device, loaded.spec.preprocessing.crop)
        rss_start = peak_rss_mb()
        log(f"{len(records)} images, {loaded.spec.name} on {plan.name}, batch {plan.batch_size}")
        decode = bench_decode(records, loaded.spec.preprocessing, plan)
        log(f"decode only   {decode:8.1f} img/s")
        model = bench_model(loaded, plan, len(records))
        log(f"model only    {model:8.1f} img/s")
        del loaded
        end_to_end, _ = bench_end_to_end(args.encoder, args.device, records, Path(tmp))
        ratio = end_to_end / min(decode, model)
        log(f"end to end    {end_to_end:8.1f} img/s  (ratio to min(decode, model): {ratio:.2f})")
        result: dict[str, Any] = {
            "machine": plan.name,
            "encoder": args.encoder,
            "images": len(records),
            "batch_size": plan.batch_size,
            "decode_only_img_s": round(decode, 1),
            "model_only_img_s": round(model, 1),
            "end_to_end_img_s": round(end_to_end, 1),
            "ratio": round(ratio, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_at_start_mb": round(rss_start, 1),
        }
    if not args.skip_relabel:
        methods = args.methods.split(",") if args.methods else adapter_names()
        sizes = [int(s) for s in args.relabel_sizes.split(",")]
        dim = 1280
        relabel = bench_relabel(methods, sizes, dim)
        for size in sizes:
            key = f"{size // 1000}k"
            result[f"relabel_ms_{key}"] = {m: round(v[key], 2) for m, v in relabel.items()}
            log(
                f"re-label at {key:>4}: "
                + ", ".join(f"{m} {v[key]:.1f} ms" for m, v in relabel.items())
            )
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    log(f"peak resident memory {result['peak_rss_mb']:.0f} MB")
    if args.json:
        print(json.dumps(result))
    return 0
