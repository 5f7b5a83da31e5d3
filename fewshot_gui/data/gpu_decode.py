"""JPEG decoding on the accelerator: bytes read in threads, decoded in batches by nvJPEG
(``torchvision.io.decode_jpeg(..., device="cuda")``), resized (antialiased) and centre-cropped on
the device. The result is the same :class:`~fewshot_gui.data.loader.Batch` as the CPU loader's, with
``images`` ``(n, C, crop, crop)`` uint8 already on ``device``.

Files that are not plain JPEGs the device can take (PNG and other formats, CMYK, EXIF-rotated,
larger than ``max_pixels``, not ending in an end-of-image marker) and files the device decoder
refuses go through the PIL path of :mod:`fewshot_gui.data.loader`, one by one; a file nothing can
decode becomes a :class:`FileFailure`, never an exception. On a CPU ``device`` the same code runs
with libjpeg (used by the tests).
"""

from __future__ import annotations

import os
import struct
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fewshot_gui.core.types import FileFailure
from fewshot_gui.data.decode import DEFAULT_MAX_PIXELS
from fewshot_gui.data.loader import Batch, PathOrRecord, _path, decode_one, run_ahead
from fewshot_gui.data.preprocess import Preprocessing

warnings.filterwarnings(  # torchvision 0.29 deprecates its decoders in favour of TorchCodec
    "ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning
)


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2})  # baseline, extended, progressive Huffman
_MODES = {"bicubic": "bicubic", "bilinear": "bilinear", "lanczos": "bicubic", "nearest": "nearest"}


@dataclass(frozen=True)
class JpegInfo:
    """What the header of a JPEG says: size, colour components, EXIF orientation (1 = upright)."""

    width: int
    height: int
    components: int
    orientation: int


def _exif_orientation(segment: bytes) -> int:
    """The orientation tag of an APP1 ``Exif`` segment body (1 when absent or unreadable)."""
    tiff = segment[6:]
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        (first,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, first)
        for i in range(count):
            tag, _, _, value = struct.unpack_from(order + "HHIH", tiff, first + 2 + 12 * i)
            if tag == 0x0112:
                return int(value)
    except struct.error:
        return 1
    return 1


def jpeg_info(data: bytes) -> JpegInfo | None:
    """Parse the markers before the scan; None when ``data`` is not a JPEG this module decodes.

    Runs once per file in the reader threads, holding the GIL: it indexes bytes rather than
    slicing segments (about 3 µs for a camera JPEG's nine segments).
    """
    if data[:2] != b"\xff\xd8":
        return None
    n, pos, orientation, size = len(data), 2, 1, None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        end = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
        if marker == 0xDA:  # start of scan: the header is over
            break
        if marker in _SOF_MARKERS:
            if end - pos >= 10 and end <= n:  # precision, height, width, components
                height = (data[pos + 5] << 8) | data[pos + 6]
                width = (data[pos + 7] << 8) | data[pos + 8]
                size = (width, height, data[pos + 9])
        elif marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            orientation = _exif_orientation(data[pos + 4 : end])
        elif 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None  # lossless / arithmetic coding: leave it to PIL
        pos = end
    if size is None:
        return None
    return JpegInfo(size[0], size[1], size[2], orientation)


def _device_info(data: bytes, max_pixels: int | None) -> JpegInfo | None:
    """The header of a complete JPEG the device decoder can turn into the PIL path's pixels."""
    info = jpeg_info(data)
    if info is None or info.components not in (1, 3) or info.orientation != 1:
        return None
    if info.width < 1 or info.height < 1:
        return None
    if max_pixels is not None and info.width * info.height > max_pixels:
        return None
    if not data.endswith(b"\xff\xd9") and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None  # truncated: the PIL path gives the reason
    return info


@dataclass(frozen=True)
class _Jpeg:
    data: bytearray  # writable, so that the decoder's input tensor is a view, not a copy
    info: JpegInfo


def read_bytes(path: str) -> bytearray:
    """A file's bytes, writable (so the decoder's input tensor is a view, not a copy).

    Four system calls and no file object where ``os.readv`` exists: the reader threads hold the
    GIL for less (on 8 threads of a 2-core machine: 13.6k files/s against 9.2k with ``open``).
    """
    if not hasattr(os, "readv"):  # Windows
        with open(path, "rb", buffering=0) as fp:
            data = bytearray(os.fstat(fp.fileno()).st_size)
            del data[fp.readinto(data) :]
        return data
    fd = os.open(path, os.O_RDONLY)
    try:
        data = bytearray(os.fstat(fd).st_size)
        del data[os.readv(fd, [data]) :]
    finally:
        os.close(fd)
    return data


def _read(path: str, preprocessing: Preprocessing, max_pixels: int | None) -> object:
    """Worker: the file's bytes when the device can decode it, else the PIL path's result."""
    try:
        data = read_bytes(path)
    except Exception:
        return decode_one(path, preprocessing, max_pixels)  # for the plain reason
    info = _device_info(data, max_pixels)
    if info is not None:
        return _Jpeg(data, info)
    return decode_one(path, preprocessing, max_pixels)


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
    datas: Sequence[bytearray], preprocessing: Preprocessing, device: torch.device
) -> list[torch.Tensor | None]:
    """Decode a list of JPEGs on ``device`` in one call; on error, one by one (None = refused)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    mode = ImageReadMode.RGB if preprocessing.channels == 3 else ImageReadMode.GRAY
    tensors = [torch.frombuffer(d, dtype=torch.uint8) for d in datas]  # views, no copies
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

    JPEGs are decoded and resized in chunks of at most ``budget`` pixels. In the common case (one
    chunk of JPEGs of one size, nothing refused) the resized chunk is the batch.
    """
    outcome: list[object] = list(results)
    jpegs = [i for i, r in enumerate(results) if isinstance(r, _Jpeg)]
    pixels = [results[i].info.width * results[i].info.height for i in jpegs]  # type: ignore[union-attr]
    # rows that the device decoded and resized, in order, with their (k, C, crop, crop) tensors
    resized: list[tuple[list[int], torch.Tensor]] = []
    for chunk in _chunks(jpegs, pixels, budget):
        decoded = _decode_on_device([outcome[i].data for i in chunk], preprocessing, device)  # type: ignore[union-attr]
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, image in zip(chunk, decoded, strict=True):
            if image is None:  # refused by the device decoder: the PIL path decides
                outcome[i] = decode_one(paths[i], preprocessing, max_pixels)
            else:
                by_size.setdefault(tuple(image.shape), []).append(i)
                outcome[i] = image
        for rows in by_size.values():  # images of one size are resized together
            stacked = torch.stack([outcome[i] for i in rows])  # type: ignore[misc]
            for i in rows:
                outcome[i] = None  # the decoded image is no longer needed
            resized.append((rows, resize_crop(stacked, preprocessing)))
            del stacked
        del decoded
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


def iter_batches_on_device(
    records: Sequence[PathOrRecord],
    preprocessing: Preprocessing,
    batch_size: int,
    num_workers: int,
    device: torch.device | str,
    prefetch: int = 2,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    decode_threads: int = DECODE_THREADS,
) -> Iterator[Batch]:
    """Like :func:`~fewshot_gui.data.loader.iter_batches`, decoding JPEGs on ``device``.

    ``num_workers`` threads read files, :data:`READ_RUN` at a time (and run the PIL path for the
    files the device cannot take); ``decode_threads`` more decode batches on the device, each on
    its own CUDA stream, while the consumer uses earlier ones. ``images`` of every batch are on
    ``device``, complete, and safe to use on the consumer's current stream. Closing the generator
    stops the work.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = torch.device(device)
    decode_threads = max(1, decode_threads)
    paths = [_path(r) for r in records]
    budget = pixel_budget(device, decode_threads)
    consumer = torch.cuda.current_stream(device) if device.type == "cuda" else None
    streams = threading.local()  # each decode thread's own CUDA stream
    readers = ThreadPoolExecutor(max(1, num_workers), thread_name_prefix="fewshot-read")
    decoder = ThreadPoolExecutor(decode_threads, thread_name_prefix="fewshot-device-decode")
    Job = tuple[list[Future[list]], Future[Batch]]

    def stage(start: int, runs: list[Future[list]]) -> Batch:
        results = [result for run in runs for result in run.result()]
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
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            runs = [
                readers.submit(_read_files, chunk[i : i + READ_RUN], preprocessing, max_pixels)
                for i in range(0, len(chunk), READ_RUN)
            ]
            yield runs, decoder.submit(stage, start, runs)

    def cancel(job: Job) -> None:
        job[1].cancel()
        for f in job[0]:
            f.cancel()

    try:
        yield from run_ahead(
            jobs(), lambda job: job[1].result(), cancel, max(prefetch, decode_threads)
        )
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        decoder.shutdown(wait=True, cancel_futures=True)
