"""Parallel decode → uint8 batches, running ahead of the consumer (the model).

:func:`iter_batches` decodes and preprocesses images in worker threads (Pillow releases the GIL
while it decodes and resizes), keeps ``prefetch`` batches in flight ahead of the consumer, and never
holds more than that in memory. A file that cannot be decoded becomes a :class:`FileFailure` in its
batch; the run goes on. Closing the generator (or breaking out of the loop) cancels what is queued
and waits only for the images being decoded at that moment.

Threads rather than processes: measured on 300 flowers-sized JPEGs (resize 256, crop 224) on an
idle 16-core host, threads were as fast as a fork process pool (2 cores: 824 vs 885 images/s;
16 cores, 8 workers: 1803 vs 1762) with no start-up cost, no pickling and no fork-after-torch risk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import torch

from fewshot_gui.core.types import FileFailure
from fewshot_gui.data.batches import (  # noqa: F401  (Batch, load_uint8: this module's API too)
    Batch,
    PathOrRecord,
    decode_one,
    load_uint8,
    path_of,
    run_ahead,
)
from fewshot_gui.data.decode import DEFAULT_MAX_PIXELS
from fewshot_gui.data.preprocess import Preprocessing

if TYPE_CHECKING:
    from fewshot_gui.core.device import DevicePlan


def _stack(
    start: int,
    results: Sequence[np.ndarray | FileFailure],
    preprocessing: Preprocessing,
    pin_memory: bool,
) -> Batch:
    good = [(start + i, r) for i, r in enumerate(results) if isinstance(r, np.ndarray)]
    failures = [(start + i, r) for i, r in enumerate(results) if isinstance(r, FileFailure)]
    shape = (len(good), preprocessing.channels, preprocessing.crop, preprocessing.crop)
    pin = pin_memory and torch.cuda.is_available()  # pinning needs a CUDA runtime
    images = torch.empty(shape, dtype=torch.uint8, pin_memory=pin)
    rows = images.numpy()  # shares memory with `images`; copies without a torch warning
    for row, (_, array) in enumerate(good):
        rows[row] = array
    return Batch([i for i, _ in good], images, failures)


def iter_batches(
    records: Sequence[PathOrRecord],
    preprocessing: Preprocessing,
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
    prefetch: int = 2,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterator[Batch]:
    """Batches of ``batch_size`` consecutive ``records`` (the last one may be shorter).

    Every record appears exactly once, either in ``Batch.indices`` or in ``Batch.failures``, in
    order. ``num_workers=0`` decodes in the calling thread, one batch at a time. ``pin_memory``
    pins the batch tensors (ignored where CUDA is absent).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    paths = [path_of(r) for r in records]
    starts = range(0, len(paths), batch_size)
    if num_workers <= 0:
        for start in starts:
            chunk = paths[start : start + batch_size]
            results = [decode_one(p, preprocessing, max_pixels) for p in chunk]
            yield _stack(start, results, preprocessing, pin_memory)
        return

    executor = ThreadPoolExecutor(num_workers, thread_name_prefix="fewshot-decode")
    Job = tuple[int, list[Future[np.ndarray | FileFailure]]]

    def jobs() -> Iterator[Job]:
        for start in starts:
            chunk = paths[start : start + batch_size]
            yield start, [executor.submit(decode_one, p, preprocessing, max_pixels) for p in chunk]

    def collect(job: Job) -> Batch:
        start, futures = job
        return _stack(start, [f.result() for f in futures], preprocessing, pin_memory)

    def cancel(job: Job) -> None:
        for future in job[1]:
            future.cancel()

    try:
        yield from run_ahead(jobs(), collect, cancel, prefetch)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def iter_plan_batches(
    records: Sequence[PathOrRecord],
    preprocessing: Preprocessing,
    plan: DevicePlan,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterator[Batch]:
    """The loader ``plan`` calls for, as the session and ``bench`` use it: JPEGs decoded on the
    device (:func:`~fewshot_gui.data.gpu_decode.iter_batches_on_device`) where the plan says so,
    else :func:`iter_batches` with the plan's decoding threads and pinned memory."""
    if plan.decode_on_device:
        from fewshot_gui.data.gpu_decode import iter_batches_on_device

        return iter_batches_on_device(
            records,
            preprocessing,
            plan.batch_size,
            plan.device_readers,
            plan.device,
            max_pixels=max_pixels,
            decode_threads=plan.decode_threads,
            reader_processes=plan.reader_processes,
        )
    return iter_batches(
        records,
        preprocessing,
        plan.batch_size,
        plan.loader_workers,
        pin_memory=plan.pin_memory,
        max_pixels=max_pixels,
    )
