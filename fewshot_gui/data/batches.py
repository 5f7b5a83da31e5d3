"""What both loaders share: the :class:`Batch` they yield, one file decoded on the CPU, and the
run-ahead of submitted jobs (:mod:`fewshot_gui.data.loader` decodes with PIL in threads,
:mod:`fewshot_gui.data.gpu_decode` on the device; the latter falls back on :func:`decode_one`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from fewshot_gui.core.errors import DecodeError
from fewshot_gui.core.types import FileFailure, ImageRecord
from fewshot_gui.data.decode import DEFAULT_MAX_PIXELS, decode_image, describe_error
from fewshot_gui.data.preprocess import Preprocessing

T = TypeVar("T")
R = TypeVar("R")

PathOrRecord = ImageRecord | str | os.PathLike[str]


@dataclass
class Batch:
    """One batch of decoded images.

    ``indices[i]`` is the position in ``records`` of ``images[i]``; ``images`` is
    ``(n, C, H, W)`` uint8 on the CPU (pinned when asked for), ``n`` may be 0; ``failures`` lists
    ``(index, FileFailure)`` for the files of this batch that could not be used.
    """

    indices: list[int]
    images: torch.Tensor
    failures: list[tuple[int, FileFailure]]

    def __len__(self) -> int:
        return len(self.indices) + len(self.failures)


def path_of(item: PathOrRecord) -> str:
    """The file path of a record, a string or a path-like object."""
    return item.path if isinstance(item, ImageRecord) else os.fspath(item)


def load_uint8(
    path: str | os.PathLike[str],
    preprocessing: Preprocessing,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """One file → ``(C, crop, crop)`` uint8 array; raises :class:`DecodeError` with the reason.

    Unlike ``preprocessing.to_uint8(decode_image(path))``, errors that appear only while a lazily
    opened JPEG is decoded (a truncated file, say) also come out as :class:`DecodeError`.
    """
    image = decode_image(path, max_pixels)
    try:
        return preprocessing.to_uint8(image)  # a lazy JPEG is decoded here, in draft mode
    except Exception as err:
        raise DecodeError(describe_error(err)) from None
    finally:
        image.close()


def decode_one(
    path: str, preprocessing: Preprocessing, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray | FileFailure:
    """Like :func:`load_uint8`, but a failure is returned as a :class:`FileFailure`."""
    try:
        return load_uint8(path, preprocessing, max_pixels)
    except Exception as err:  # one bad file never stops a run
        return FileFailure(path, describe_error(err))


def run_ahead(
    jobs: Iterator[T], collect: Callable[[T], R], cancel: Callable[[T], None], prefetch: int
) -> Iterator[R]:
    """Yield ``collect(job)`` for each job in order, keeping ``prefetch`` more jobs submitted.

    ``jobs`` submits work as it is iterated (a generator of futures, say): while the consumer holds
    result k, jobs k+1 … k+prefetch run. Closing the generator cancels the jobs still queued.
    """
    queued: deque[T] = deque()

    def top_up(size: int) -> None:
        while len(queued) < size:
            job = next(jobs, None)
            if job is None:
                return
            queued.append(job)

    try:
        top_up(max(0, prefetch) + 1)
        while queued:
            result = collect(queued.popleft())
            yield result
            top_up(max(0, prefetch))
    finally:
        for job in queued:
            cancel(job)
