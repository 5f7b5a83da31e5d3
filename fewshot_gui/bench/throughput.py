"""Images per second of decoding alone, the model alone, and labeling end to end (decode, model,
adapter), measured in this process so that their ratio means something on a loaded machine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


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


def measure_throughput(
    encoder: str,
    device: str,
    records: list,
    work_dir: Path,
    rounds: int = 3,
    time_limit: float | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Decode only, model only and end to end, measured in turn ``rounds`` times (a shared
    machine's load drifts between measurements, so each round sees the same load); medians and
    ``ratio`` = median over rounds of end to end / min(decode, model). Also the embedding size
    (``embed_dim``), the device plan's facts and the resident memory after loading."""
    import numpy as np

    from fewshot_gui.bench.memory import peak_rss_mb
    from fewshot_gui.core.device import plan_device
    from fewshot_gui.encoders.registry import load_encoder

    log = log or (lambda *a: None)
    plan = plan_device(device)
    loaded = load_encoder(encoder, plan)
    plan = plan_device(device, loaded.spec.preprocessing.crop)
    rss_start = peak_rss_mb()
    log(f"{len(records)} images, {loaded.spec.name} on {plan.name}, batch {plan.batch_size}")
    measured = []
    for r in range(rounds):
        decode = bench_decode(records, loaded.spec.preprocessing, plan, time_limit)
        model = bench_model(loaded, plan, len(records), time_limit)
        end_to_end, _ = bench_end_to_end(encoder, device, records, work_dir, time_limit)
        measured.append((decode, model, end_to_end))
        log(
            f"round {r + 1}/{rounds}: decode only {decode:.1f}, model only {model:.1f},"
            f" end to end {end_to_end:.1f} img/s (ratio {end_to_end / min(decode, model):.2f})"
        )
    dim = int(loaded.spec.embed_dim)
    del loaded
    decode, model, end_to_end = (float(v) for v in np.median(np.array(measured), axis=0))
    return {
        "machine": plan.name,
        "embed_dim": dim,
        "device_decode": plan.decode_on_device,
        "decode_threads": plan.decode_threads if plan.decode_on_device else 0,
        "loader_threads": plan.device_readers if plan.decode_on_device else plan.loader_workers,
        "reader_processes": plan.reader_processes if plan.decode_on_device else 0,
        "images": len(records),
        "batch_size": plan.batch_size,
        "decode_only_img_s": round(decode, 1),
        "model_only_img_s": round(model, 1),
        "end_to_end_img_s": round(end_to_end, 1),
        "ratio": round(float(np.median([e / min(d, m) for d, m, e in measured])), 3),
        "rounds": [[round(v, 1) for v in row] for row in measured],
        "rss_at_start_mb": round(rss_start, 1),
    }
