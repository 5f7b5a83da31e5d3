"""Reading JPEG files for the device decoder in worker processes.

Reading a cached JPEG and checking its header is mostly Python holding the GIL (one thread reads
~15k files/s on the 16-core H200 host; 15 threads only 11k, queueing for the GIL, and they hold
up the model's thread as well). Worker processes (a :class:`torch.utils.data.DataLoader`) read
*runs* of consecutive files instead and send each run back as one uint8 tensor in shared memory
with its files' lengths and headers, so the labeling process does next to no work per file
(ResNet-18 end to end on the H200 host: 11.7k img/s, against 10.1k with 4 reader threads).

:class:`RunReader` hands the runs out in order; if the processes cannot start or one fails, it
reads the rest in the calling thread (slower, same result).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from fewshot_gui.data.jpeg_header import JpegInfo, read_jpeg

RUN_FILES = 128
"""Files per run: what this process unpickles (one tensor, two short lists) is paid per run, not
per file."""


class Run(NamedTuple):
    """What a reader process sends back for a run of files.

    ``data`` ``(nbytes,)`` uint8 holds the device-decodable files back to back, ``lengths`` their
    sizes; ``infos[i]`` is file i's header, None when the device should not take it (then the
    PIL path reads it again and gives the reason).
    """

    data: torch.Tensor
    lengths: list[int]
    infos: list[JpegInfo | None]


class FileRuns(Dataset):
    """Item k: :class:`Run` of ``paths[start:end]`` for ``(start, end) = ranges[k]``."""

    def __init__(
        self, paths: Sequence[str], ranges: Sequence[tuple[int, int]], max_pixels: int | None
    ) -> None:
        self.paths = list(paths)
        self.ranges = list(ranges)
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.ranges)

    def __getitem__(self, k: int) -> Run:
        start, end = self.ranges[k]
        datas: list[bytearray] = []
        infos: list[JpegInfo | None] = []
        for path in self.paths[start:end]:
            jpeg = read_jpeg(path, self.max_pixels)
            infos.append(None if jpeg is None else jpeg[1])  # None: the PIL path decides
            if jpeg is not None:
                datas.append(jpeg[0])
        if not datas:
            return Run(torch.empty(0, dtype=torch.uint8), [], infos)
        blob = bytearray().join(datas)
        return Run(torch.frombuffer(blob, dtype=torch.uint8), [len(d) for d in datas], infos)


def run_ranges(count: int, batch_size: int, run: int = RUN_FILES) -> list[list[tuple[int, int]]]:
    """For each batch of ``batch_size`` of ``count`` files, its runs ``(start, end)`` of at most
    ``run`` files (a run never spans two batches)."""
    batches = []
    for start in range(0, count, batch_size):
        end = min(start + batch_size, count)
        batches.append([(s, min(s + run, end)) for s in range(start, end, run)])
    return batches


def _context() -> Any:
    """Fork server where there is one (a clean process that has imported this module: workers
    start in milliseconds, and nothing of this multi-threaded process is forked); else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def start_reader_processes() -> None:
    """Start the fork server now, where there is one: it imports torch (seconds), which the first
    labeling would otherwise wait for."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        _context()
        forkserver.ensure_running()


class RunReader:
    """The runs of ``dataset`` in order, read by ``processes`` worker processes.

    :meth:`next` is called from one thread at a time. When the workers cannot start or fail, the
    remaining runs are read in the calling thread.
    """

    def __init__(self, dataset: FileRuns, processes: int, prefetch: int = 4) -> None:
        self.dataset = dataset
        self.processes = max(1, min(processes, len(dataset)))
        self.prefetch = prefetch
        self._next = 0
        self._iterator: Any = None
        self.failed: BaseException | None = None

    def next(self) -> Run:
        k = self._next
        self._next += 1
        if self.failed is None:
            try:
                if self._iterator is None:
                    loader = DataLoader(
                        self.dataset,
                        batch_size=None,
                        num_workers=self.processes,
                        multiprocessing_context=_context(),
                        prefetch_factor=self.prefetch,
                    )
                    self._iterator = iter(loader)
                return next(self._iterator)
            except Exception as error:  # no processes here, or one died: read in this thread
                self.failed = error
                self.close()
        return self.dataset[k]

    def close(self) -> None:
        """Stop the worker processes (the runs they have read are dropped)."""
        self._iterator = None  # the DataLoader iterator's finaliser stops and joins its workers
