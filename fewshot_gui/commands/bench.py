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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

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


def make_photos(
    folder: Path, count: int, size: tuple[int, int] = (500, 375), seed: int = 0, first: int = 0
) -> None:
    """Write ``count`` photo-like JPEGs (smooth colour fields plus texture and noise), numbered
    from ``first``."""
    from PIL import Image

    rng = np.random.default_rng(seed + first)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(first, first + count):
        coarse = rng.uniform(0, 255, size=(6, 8, 3)).astype(np.uint8)
        image = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, size=(h, w, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"photo_{i:06d}.jpg", quality=85
        )


def _make_part(args: tuple[str, int, int, float]) -> int:
    folder, first, count, deadline = args
    made = 0
    for start in range(first, first + count, 50):  # small steps, to stop at the deadline
        if time.time() > deadline:
            break
        step = min(50, first + count - start)
        make_photos(Path(folder), step, first=start)
        made += step
    return made


def make_photos_parallel(
    folder: Path, count: int, processes: int, time_limit: float | None = None
) -> int:
    """:func:`make_photos` on ``processes`` processes; stops after ``time_limit`` seconds.
    Returns how many photos were made."""
    from concurrent.futures import ProcessPoolExecutor

    deadline = time.time() + (time_limit if time_limit is not None else 1e9)
    per = -(-count // max(1, processes))
    parts = [(str(folder), f, min(per, count - f), deadline) for f in range(0, count, per)]
    if processes <= 1:
        return sum(map(_make_part, parts))
    with ProcessPoolExecutor(processes) as pool:
        return sum(pool.map(_make_part, parts))


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def random_weights_encoder(name: str) -> str:
    """Register ``<name>-random-weights``: ``name``'s architecture and preprocessing with random
    weights (nothing downloaded); returns the new name."""
    import dataclasses

    from fewshot_gui.encoders.checkpoint import build_architecture
    from fewshot_gui.encoders.registry import encoder_names, register_encoder, resolve_encoder

    spec = resolve_encoder(name)
    if spec.arch_name is None:
        raise UsageError(f"--random-weights: {name} names no architecture")
    random_name = f"{spec.name}-random-weights"
    if random_name not in encoder_names():
        arch, kwargs = spec.arch_name, dict(spec.arch_kwargs)
        register_encoder(
            dataclasses.replace(
                spec,
                name=random_name,
                description=f"{spec.name} architecture, random weights (benchmarks only)",
                weights_source="random initialisation",
                build=lambda: build_architecture(arch, kwargs).eval(),
                check_available=lambda: None,
                checkpoint_path=None,
            )
        )
    return random_name


def _sync(plan: Any) -> None:
    if plan.is_cuda:
        import torch

        torch.cuda.synchronize()


def bench_decode(
    records: list, preprocessing: Any, plan: Any, time_limit: float | None = None
) -> float:
    from fewshot_gui.data.loader import iter_plan_batches

    warm_up = plan.batch_size
    if plan.decode_on_device:
        from fewshot_gui.data.gpu_decode import PROCESS_MIN_FILES

        warm_up = max(warm_up, PROCESS_MIN_FILES)  # the reader processes' fork server starts
    for _ in iter_plan_batches(records[:warm_up], preprocessing, plan):
        pass  # warm-up: decoder start-up (nvJPEG's costs 0.7 s), thread pools
    _sync(plan)
    start, n = time.perf_counter(), 0
    batches = iter_plan_batches(records, preprocessing, plan)
    try:
        for batch in batches:
            n += len(batch)
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
        _sync(plan)
    finally:
        batches.close()
    return _rate(n, time.perf_counter() - start)


def bench_model(loaded: Any, plan: Any, count: int, time_limit: float | None = None) -> float:
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
    batches = max(2, count // plan.batch_size)
    _sync(plan)
    start, done = time.perf_counter(), 0
    for _ in range(batches):
        step()
        done += 1
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
    _sync(plan)
    return _rate(done * plan.batch_size, time.perf_counter() - start)


def bench_end_to_end(
    encoder: str, device: str, records: list, cache_dir: Path, time_limit: float | None = None
) -> tuple[float, int]:
    """Images/s of ``LabelingSession.label`` (decode, model, adapter), no embedding cache."""
    from fewshot_gui.core.types import Progress
    from fewshot_gui.session import LabelingSession

    session = LabelingSession(encoder=encoder, device=device, cache_dir=cache_dir, use_cache=False)
    session.load()
    examples = {"a": [records[0].path], "b": [records[1].path]}
    for _ in session.set_support(examples):
        pass
    start, done = time.perf_counter(), 0
    labeling = session.label(records)
    try:
        for item in labeling:
            if isinstance(item, Progress):
                done = item.done
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
    finally:
        labeling.close()
    seconds = time.perf_counter() - start
    return _rate(done, seconds), session.embedded_count


def bench_relabel(
    methods: list[str],
    sizes: list[int],
    dim: int,
    states: Mapping[str, Mapping[str, Any] | None] | None = None,
    repeats: int = 5,
) -> dict:
    """Median ms to add one example and re-predict ``n`` cached embeddings, per method and size.

    As in the app: the embeddings are in an :class:`EmbeddingTable` that was labeled before (so
    the support-independent query features are cached), the adapter has the encoder's
    meta-learned state ``states[method]`` when there is one, and each correction is
    ``add_example`` then ``predict_proba`` over every image.
    """
    from fewshot_gui.adapters.registry import create_adapter
    from fewshot_gui.core.embedding_table import EmbeddingTable

    rng = np.random.default_rng(0)
    classes, shots = 5, 5
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    support = np.repeat(centres, shots, axis=0) + 0.5 * rng.normal(size=(classes * shots, dim))
    labels = [f"class{i}" for i in range(classes) for _ in range(shots)]
    results: dict[str, dict[str, float]] = {}
    for n in sizes:
        table = EmbeddingTable(dim)
        paths = [f"image{i}" for i in range(n)]
        for start in range(0, n, 4096):  # as labeling adds them, batch by batch
            part = rng.integers(0, classes, min(4096, n - start))
            noise = 0.5 * rng.normal(size=(len(part), dim))
            table.add(paths[start : start + len(part)], centres[part] + noise)
        rows = table.rows(paths)
        for method in methods:
            state = (states or {}).get(method)
            adapter = create_adapter(method, state=state).fit(support.astype(np.float32), labels)
            features = table.features(rows, adapter.feature_kind(), adapter.query_features)
            adapter.predict_proba(table.vectors(rows), features)  # labeled once before
            timings = []
            for r in range(repeats):
                example = table.vectors(rows)[r]
                start = time.perf_counter()
                adapter.add_example(example, labels[r % len(labels)])
                features = table.features(rows, adapter.feature_kind(), adapter.query_features)
                adapter.predict_proba(table.vectors(rows), features)
                timings.append((time.perf_counter() - start) * 1000)
            results.setdefault(method, {})[size_key(n)] = float(np.median(timings))
    return results


def adapter_states(encoder: str, methods: list[str]) -> dict[str, Any]:
    """Each method's meta-learned adapter state from ``encoder``'s checkpoint (None without one);
    a family name such as ``omniglot`` resolves to the checkpoint made for each method."""
    from fewshot_gui.encoders.checkpoint import load_checkpoint
    from fewshot_gui.encoders.registry import adapter_state_for, resolve_encoder

    states: dict[str, Any] = {}
    for method in methods:
        path = resolve_encoder(encoder, method).checkpoint_path
        entry = load_checkpoint(path)["adapter"] if path is not None else None
        states[method] = adapter_state_for(entry, method)[0] if entry else None
    return states


def size_key(n: int) -> str:
    """``10000`` → ``"10k"``, ``100`` → ``"100"`` (JSON key suffixes)."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory now (``/proc/self/statm``; the peak where that is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / 2**20


def make_tiny_images(folder: Path, count: int, size: int = 64) -> None:
    """``count`` small JPEGs (two colour families, with noise), fast to make and decode."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    templates = []
    for _ in range(16):
        base = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(base).save(buffer, format="JPEG", quality=80)
        templates.append(buffer.getvalue())
    for i in range(count):  # file contents repeat; files are still distinct records
        sub = folder / f"{i // 10_000:03d}"
        if i % 10_000 == 0:
            sub.mkdir(exist_ok=True)
        (sub / f"img_{i:07d}.jpg").write_bytes(templates[i % len(templates)])


MEMORY_CHECK_SIZE = 32
"""Image size of the ``--memory-check`` encoder (Conv-4 at 32×32: 256 features)."""
MEMORY_CHECK_DIM = 1280
"""Embedding size of the ``--memory-check`` encoder: that of the default encoder (photos)."""


def memory_check_encoder() -> str:
    """Register ``conv4-memory-check``: Conv-4 with random weights at 32×32 px, then a random
    linear map to :data:`MEMORY_CHECK_DIM` (the default encoder's embedding size): cheap to run
    on 100,000 images, with embeddings as large as the real ones."""
    import dataclasses

    from torch import nn

    from fewshot_gui.data.preprocess import Preprocessing
    from fewshot_gui.encoders.checkpoint import build_architecture
    from fewshot_gui.encoders.registry import encoder_names, register_encoder, resolve_encoder

    name = "conv4-memory-check"
    if name not in encoder_names():
        size = MEMORY_CHECK_SIZE
        kwargs = {"in_channels": 3, "image_size": size}

        def build() -> nn.Module:
            conv = build_architecture("conv4", kwargs)
            return nn.Sequential(conv, nn.Linear(conv.embed_dim, MEMORY_CHECK_DIM)).eval()

        register_encoder(
            dataclasses.replace(
                resolve_encoder("conv4"),
                name=name,
                description=f"Conv-4, random weights, 32×32, {MEMORY_CHECK_DIM}-d (memory check)",
                preprocessing=Preprocessing(resize=size, crop=size, interpolation="bilinear"),
                embed_dim=MEMORY_CHECK_DIM,
                build=build,
                arch_kwargs=kwargs,
            )
        )
    return name


def memory_check(count: int, device: str, log: Any) -> dict[str, Any]:
    """Label ``count`` tiny images with a small encoder (embedding cache on) and measure how far
    resident memory grows above what it was once the model was loaded."""
    from fewshot_gui.core.types import Progress
    from fewshot_gui.session import LabelingSession

    with tempfile.TemporaryDirectory(prefix="fewshot-memcheck-") as tmp:
        folder = Path(tmp) / "images"
        start = time.perf_counter()
        make_tiny_images(folder, count)
        log(f"made {count} 64×64 JPEGs in {time.perf_counter() - start:.1f} s")
        session = LabelingSession(
            encoder=memory_check_encoder(), device=device, cache_dir=Path(tmp) / "cache"
        )
        session.load()
        first = sorted(folder.rglob("*.jpg"))[:2]
        for _ in session.set_support({"a": [first[0]], "b": [first[1]]}):
            pass
        rss_before = current_rss_mb()
        start, done = time.perf_counter(), 0
        for item in session.label(folder):
            if isinstance(item, Progress):
                done = item.done
        seconds = time.perf_counter() - start
        labeled = len(session.predictions().paths)
        dim = session.embed_dim
        session.close()
    growth = peak_rss_mb() - rss_before
    per_image_kb = growth * 1024 / max(1, labeled)
    log(
        f"memory check: {labeled} images labeled in {seconds:.1f} s; resident memory grew "
        f"{growth:.0f} MB above {rss_before:.0f} MB ({per_image_kb:.2f} KB per image, "
        f"{dim}-d embeddings)"
    )
    return {
        "memory_check_images": labeled,
        "memory_check_seconds": round(seconds, 1),
        "memory_check_embed_dim": dim,
        "rss_before_label_mb": round(rss_before, 1),
        "peak_rss_growth_mb": round(growth, 1),
        "peak_rss_growth_kb_per_image": round(per_image_kb, 3),
        "embeddings_mb": round(labeled * dim * 4 / 2**20, 1),
        "done": done,
    }


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.adapters.registry import adapter_names
    from fewshot_gui.core.device import plan_device
    from fewshot_gui.data.folder import scan_folder
    from fewshot_gui.encoders.registry import load_encoder

    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    if args.memory_check is not None:
        if args.memory_check < 2:
            raise UsageError("--memory-check needs at least 2 images")
        result = {
            "machine": plan_device(args.device).name,
            **memory_check(args.memory_check, args.device, log),
        }
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        if args.json:
            print(json.dumps(result))
        return 0
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
        encoder = random_weights_encoder(args.encoder) if args.random_weights else args.encoder
        plan = plan_device(args.device)
        loaded = load_encoder(encoder, plan)
        plan = plan_device(args.device, loaded.spec.preprocessing.crop)
        rss_start = peak_rss_mb()
        dim = int(loaded.spec.embed_dim)
        log(f"{len(records)} images, {loaded.spec.name} on {plan.name}, batch {plan.batch_size}")
        limit = args.time_limit
        if args.rounds < 1:
            raise UsageError("--rounds must be at least 1")
        rounds = []  # (decode, model, end to end) img/s, measured in turn: load drifts cancel
        for r in range(args.rounds):
            decode = bench_decode(records, loaded.spec.preprocessing, plan, limit)
            model = bench_model(loaded, plan, len(records), limit)
            end_to_end, _ = bench_end_to_end(encoder, args.device, records, Path(tmp), limit)
            rounds.append((decode, model, end_to_end))
            log(
                f"round {r + 1}/{args.rounds}: decode only {decode:.1f}, model only {model:.1f},"
                f" end to end {end_to_end:.1f} img/s (ratio {end_to_end / min(decode, model):.2f})"
            )
        del loaded
        decode, model, end_to_end = (float(v) for v in np.median(np.array(rounds), axis=0))
        ratio = float(np.median([e / min(d, m) for d, m, e in rounds]))
        log(f"decode only   {decode:8.1f} img/s")
        log(f"model only    {model:8.1f} img/s")
        log(f"end to end    {end_to_end:8.1f} img/s  (ratio to min(decode, model): {ratio:.2f})")
        result: dict[str, Any] = {
            "machine": plan.name,
            "encoder": args.encoder,
            "random_weights": bool(args.random_weights),
            "device_decode": plan.decode_on_device,
            "decode_threads": plan.decode_threads if plan.decode_on_device else 0,
            "loader_threads": plan.device_readers if plan.decode_on_device else plan.loader_workers,
            "reader_processes": plan.reader_processes if plan.decode_on_device else 0,
            "images": len(records),
            "batch_size": plan.batch_size,
            "decode_only_img_s": round(decode, 1),
            "model_only_img_s": round(model, 1),
            "end_to_end_img_s": round(end_to_end, 1),
            "ratio": round(ratio, 3),
            "rounds": [[round(v, 1) for v in row] for row in rounds],
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_at_start_mb": round(rss_start, 1),
        }
    if not args.skip_relabel:
        methods = args.methods.split(",") if args.methods else adapter_names()
        sizes = [int(s) for s in args.relabel_sizes.split(",")]
        states = adapter_states(encoder, methods)
        relabel = bench_relabel(methods, sizes, dim, states)
        for size in sizes:
            key = size_key(size)
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
