"""JPEG decoding on the accelerator: bytes read in threads or processes, decoded in batches by nvJPEG
(``torchvision.io.decode_jpeg(..., device="cuda")``), resized (antialiased) and centre-cropped on
the device. The result is the same :class:`~fewshot_gui.data.batches.Batch` as the CPU loader's, with
``images`` ``(n, C, crop, crop)`` uint8 already on ``device``.

Files that are not plain JPEGs the device can take (PNG and other formats, CMYK, EXIF-rotated,
larger than ``max_pixels``, not ending in an end-of-image marker) and files the device decoder
refuses go through the PIL path (:func:`~fewshot_gui.data.batches.decode_one`), one by one; a file nothing can
decode becomes a :class:`FileFailure`, never an exception. On a CPU ``device`` the same code runs
with libjpeg (used by the tests).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from fewshot_gui.core.device import is_out_of_memory
from fewshot_gui.core.types import FileFailure
from fewshot_gui.data.batches import Batch, PathOrRecord, decode_one, path_of, run_ahead
from fewshot_gui.data.decode import DEFAULT_MAX_PIXELS
from fewshot_gui.data.jpeg_header import JpegInfo, read_jpeg
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.data.read_processes import FileRuns, RunReader, run_ranges

warnings.filterwarnings(  # torchvision 0.29 deprecates its decoders in favour of TorchCodec
    "ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning
)


_MODES = {"bicubic": "bicubic", "bilinear": "bilinear", "lanczos": "bicubic", "nearest": "nearest"}


class _Jpeg(NamedTuple):
    """A file for the device decoder: its bytes (writable, so the decoder's input tensor is a
    view, not a copy; or a ``(nbytes,)`` uint8 tensor from a reader process) and its header."""

    data: bytearray | torch.Tensor
    info: JpegInfo


def _read(path: str, preprocessing: Preprocessing, max_pixels: int | None) -> object:
    """Worker: the file's bytes when the device can decode it, else the PIL path's result."""
    jpeg = read_jpeg(path, max_pixels)
    if jpeg is None:  # not for the device, or unreadable: the PIL path gives the reason
        return decode_one(path, preprocessing, max_pixels)
    return _Jpeg(*jpeg)


def _read_files(paths: Sequence[str], preprocessing: Preprocessing, max_pixels: int | None) -> list:
    """Worker task: :func:`_read` for a run of files (one future per run, not per file)."""
    return [_read(path, preprocessing, max_pixels) for path in paths]


def resize_crop(images: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """``(n, C, h, w)`` uint8 (one size) → ``(n, C, crop, crop)`` uint8 on the same device: shorter
    side to ``resize`` (antialiased), centre crop, as :meth:`Preprocessing.to_uint8` does."""
    h, w = images.shape[-2:]
    crop = preprocessing.crop
    scale = preprocessing.resize / min(w, h)
    new_w, new_h = max(crop, round(w * scale)), max(crop, round(h * scale))
    if (new_w, new_h) != (w, h):
        mode = _MODES.get(preprocessing.interpolation, "bilinear")
        x = images.float()
        x = F.interpolate(
            x, size=(new_h, new_w), mode=mode, antialias=mode != "nearest", align_corners=None
        )
        images = x.round_().clamp_(0, 255).to(torch.uint8)
    top, left = (new_h - crop) // 2, (new_w - crop) // 2
    return images[..., top : top + crop, left : left + crop]


def _decode_on_device(
    datas: Sequence[bytearray | torch.Tensor], preprocessing: Preprocessing, device: torch.device
) -> list[torch.Tensor | None]:
    """Decode a list of JPEGs on ``device`` in one call; on error, one by one (None = refused)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    mode = ImageReadMode.RGB if preprocessing.channels == 3 else ImageReadMode.GRAY
    tensors = [  # views, no copies
        d if isinstance(d, torch.Tensor) else torch.frombuffer(d, dtype=torch.uint8) for d in datas
    ]
    if not tensors:
        return []
    try:
        return list(decode_jpeg(tensors, mode=mode, device=device))
    except Exception:  # one bad file fails the whole call: find it
        decoded: list[torch.Tensor | None] = []
        for tensor in tensors:
            try:
                decoded.append(decode_jpeg(tensor, mode=mode, device=device))
            except Exception:
                decoded.append(None)
        return decoded


DEVICE_PIXEL_BUDGET = 256 * 2**20
"""Most decoded pixels one decode thread holds on the device while it decodes and resizes (the
float copy for resizing takes 12 bytes per pixel): see :func:`pixel_budget`."""

DECODE_THREADS = 2
"""Threads that decode batches on the device. nvJPEG runs one call at a time (torchvision holds a
lock), so a second thread prepares and resizes one batch while the other decodes."""


def pixel_budget(device: torch.device, threads: int = DECODE_THREADS) -> int:
    """Decoded pixels per chunk: :data:`DEVICE_PIXEL_BUDGET`, less on a small GPU (each of
    ``threads`` threads may hold one chunk and its float copy, ~16 bytes a pixel, at once)."""
    if device.type != "cuda":
        return DEVICE_PIXEL_BUDGET
    total = torch.cuda.get_device_properties(device).total_memory
    return max(2**20, min(DEVICE_PIXEL_BUDGET, total // (64 * max(1, threads))))


def _chunks(rows: list[int], pixels: list[int], budget: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    total = 0
    for row, count in zip(rows, pixels, strict=True):
        if chunk and total + count > budget:
            yield chunk
            chunk, total = [], 0
        chunk.append(row)
        total += count
    if chunk:
        yield chunk


def assemble(
    start: int,
    results: Sequence[object],
    paths: Sequence[str],
    preprocessing: Preprocessing,
    device: torch.device,
    max_pixels: int | None,
    budget: int = DEVICE_PIXEL_BUDGET,
) -> Batch:
    """One :class:`Batch` on ``device`` from the workers' results (JPEG bytes, arrays, failures).

    JPEGs are decoded and resized in chunks of at most ``budget`` pixels; when the device runs out
    of memory, again with a quarter of the budget, and at the last by the PIL path (never a failed
    run). In the common case (one chunk of JPEGs of one size, nothing refused) the resized chunk
    is the batch.
    """

    def decode(outcome: list[object], budget: int) -> list[tuple[list[int], torch.Tensor]]:
        """Decode the JPEGs of ``outcome`` (refused ones: the PIL path's result, in place);
        returns rows and their ``(k, C, crop, crop)`` tensors, in order."""
        jpegs = [i for i, r in enumerate(outcome) if isinstance(r, _Jpeg)]
        pixels = [outcome[i].info.width * outcome[i].info.height for i in jpegs]  # type: ignore[union-attr]
        resized: list[tuple[list[int], torch.Tensor]] = []
        for chunk in _chunks(jpegs, pixels, budget):
            decoded = _decode_on_device([outcome[i].data for i in chunk], preprocessing, device)  # type: ignore[union-attr]
            by_size: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = {}
            for i, image in zip(chunk, decoded, strict=True):
                if image is None:  # refused by the device decoder: the PIL path decides
                    outcome[i] = decode_one(paths[i], preprocessing, max_pixels)
                else:
                    by_size.setdefault(tuple(image.shape), []).append((i, image))
            del decoded
            for pairs in by_size.values():  # images of one size are resized together
                stacked = torch.stack([image for _, image in pairs])
                rows = [i for i, _ in pairs]
                del pairs[:]  # the decoded images are no longer needed
                resized.append((rows, resize_crop(stacked, preprocessing)))
                del stacked
        return resized

    outcome: list[object] = list(results)
    while True:
        try:
            resized = decode(outcome, budget)
            break
        except Exception as error:
            if not is_out_of_memory(error):
                raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if budget <= 1:  # not even one image fits: this batch goes through the PIL path
            outcome = [
                decode_one(path, preprocessing, max_pixels) if isinstance(r, _Jpeg) else r
                for path, r in zip(paths, outcome, strict=True)
            ]
        budget //= 4
    failures = [(start + i, r) for i, r in enumerate(outcome) if isinstance(r, FileFailure)]
    on_device = {i for rows, _ in resized for i in rows}
    good = [i for i, r in enumerate(outcome) if i in on_device or isinstance(r, np.ndarray)]
    if len(resized) == 1 and resized[0][0] == good:
        images = resized[0][1].contiguous()  # the crop is a view of the larger resized batch
    else:
        c, crop = preprocessing.channels, preprocessing.crop
        images = torch.empty((len(good), c, crop, crop), dtype=torch.uint8, device=device)
        position = {i: row for row, i in enumerate(good)}
        for rows, tensor in resized:
            images[[position[i] for i in rows]] = tensor
        for i in good:
            if i not in on_device:
                images[position[i]] = torch.from_numpy(outcome[i]).to(device)  # type: ignore[arg-type]
    return Batch([start + i for i in good], images, failures)


READ_RUN = 32
"""Files per reader task: fewer futures, less Python per file (measured side by side in
``benchmarks/decode_stages.py``)."""


PROCESS_MIN_FILES = 2048
"""Fewer files than this are read in threads: starting reader processes costs more."""


def iter_batches_on_device(
    records: Sequence[PathOrRecord],
    preprocessing: Preprocessing,
    batch_size: int,
    num_workers: int,
    device: torch.device | str,
    prefetch: int = 2,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    decode_threads: int = DECODE_THREADS,
    reader_processes: int = 0,
) -> Iterator[Batch]:
    """Like :func:`~fewshot_gui.data.loader.iter_batches`, decoding JPEGs on ``device``.

    Files are read by ``reader_processes`` worker processes (see
    :mod:`~fewshot_gui.data.read_processes`; for :data:`PROCESS_MIN_FILES` files or more) or else
    by ``num_workers`` threads, :data:`READ_RUN` files a task; ``num_workers`` threads also run
    the PIL path for the files the device cannot take. ``decode_threads`` threads decode batches
    on the device, each on its own CUDA stream, while the consumer uses earlier ones. ``images``
    of every batch are on ``device``, complete, and safe to use on the consumer's current stream.
    Closing the generator stops the work.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = torch.device(device)
    decode_threads = max(1, decode_threads)
    paths = [path_of(r) for r in records]
    budget = pixel_budget(device, decode_threads)
    consumer = torch.cuda.current_stream(device) if device.type == "cuda" else None
    streams = threading.local()  # each decode thread's own CUDA stream
    readers = ThreadPoolExecutor(max(1, num_workers), thread_name_prefix="fewshot-read")
    decoder = ThreadPoolExecutor(decode_threads, thread_name_prefix="fewshot-device-decode")
    runs: RunReader | None = None
    if reader_processes > 0 and len(paths) >= PROCESS_MIN_FILES:
        ranges = run_ranges(len(paths), batch_size)
        runs = RunReader(
            FileRuns(paths, [r for batch in ranges for r in batch], max_pixels), reader_processes
        )
        fetcher = ThreadPoolExecutor(1, thread_name_prefix="fewshot-read-runs")
    Job = tuple[list[Future[list]], Future[Batch]]

    def fetch(start: int, count: int) -> list:
        """In the fetcher thread, batch after batch: the next ``count`` runs, as read results."""
        assert runs is not None
        results: list = []
        for _ in range(count):
            run = runs.next()
            views = iter(run.data.split(run.lengths) if run.lengths else ())
            for info in run.infos:
                if info is None:  # the PIL path, in a reader thread
                    path = paths[start + len(results)]
                    results.append(readers.submit(decode_one, path, preprocessing, max_pixels))
                else:
                    results.append(_Jpeg(next(views), info))
        return results

    def stage(start: int, reads: list[Future[list]]) -> Batch:
        results = [r.result() if isinstance(r, Future) else r for f in reads for r in f.result()]
        chunk = paths[start : start + batch_size]
        if consumer is None:
            return assemble(start, results, chunk, preprocessing, device, max_pixels, budget)
        stream = getattr(streams, "stream", None)
        if stream is None:
            stream = streams.stream = torch.cuda.Stream(device)
        with torch.cuda.stream(stream):
            batch = assemble(start, results, chunk, preprocessing, device, max_pixels, budget)
            batch.images.record_stream(consumer)  # freed only once the consumer's work is done
        stream.synchronize()  # releases the GIL; the batch is complete when it is handed over
        return batch

    def jobs() -> Iterator[Job]:
        for b, start in enumerate(range(0, len(paths), batch_size)):
            if runs is not None:
                reads = [fetcher.submit(fetch, start, len(ranges[b]))]
            else:
                chunk = paths[start : start + batch_size]
                reads = [
                    readers.submit(_read_files, chunk[i : i + READ_RUN], preprocessing, max_pixels)
                    for i in range(0, len(chunk), READ_RUN)
                ]
            yield reads, decoder.submit(stage, start, reads)

    def cancel(job: Job) -> None:
        job[1].cancel()
        for f in job[0]:
            f.cancel()

    try:
        yield from run_ahead(
            jobs(), lambda job: job[1].result(), cancel, max(prefetch, decode_threads)
        )
    finally:
        if runs is not None:
            fetcher.shutdown(wait=True, cancel_futures=True)
            runs.close()
        readers.shutdown(wait=True, cancel_futures=True)
        decoder.shutdown(wait=True, cancel_futures=True)
