"""Rows of the embedding cache's data file: keys, checksums, reading and appending.

A row is ``dim`` half-precision floats. Its checksum (blake2b, 8 bytes) covers the row's bytes *and*
its key (path plus file identity), so a row that is damaged, garbled, swapped with another or read
from the wrong place never verifies. Reading uses plain file reads, never a memory map: a data file
that shrinks under a reader gives short reads (rows not found), not a crash.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence

import numpy as np

from fewshot_gui.core.types import ImageRecord

_IDENTITY = struct.Struct("<qqqQ")  # size, mtime_ns, ctime_ns, inode
_PERSON = b"fewshot-cache-2"


def identity(record: ImageRecord) -> bytes:
    """The file identity of ``record`` as stored in the index: size, mtime, ctime, inode."""
    return _IDENTITY.pack(record.size, record.mtime_ns, record.ctime_ns, record.inode % 2**64)


def checksum(key: bytes, ident: bytes, row: bytes | memoryview) -> int:
    """Signed 64-bit checksum of one row bound to its key (SQLite stores it as an INTEGER)."""
    digest = hashlib.blake2b(key, digest_size=8, person=_PERSON)
    digest.update(ident)
    digest.update(row)
    return int.from_bytes(digest.digest(), "little", signed=True)


def checksums(keys: Sequence[bytes], idents: Sequence[bytes], rows: np.ndarray) -> np.ndarray:
    """Checksums of ``rows`` ``(N, dim)`` float16 for their keys; ``(N,)`` int64."""
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    data = memoryview(np.ascontiguousarray(rows)).cast("B")
    width = rows.shape[1] * rows.itemsize
    return np.fromiter(
        (
            checksum(k, i, data[n * width : (n + 1) * width])
            for n, (k, i) in enumerate(zip(keys, idents, strict=True))
        ),
        dtype=np.int64,
        count=len(keys),
    )


def read_rows(
    path: os.PathLike[str] | str, rows: np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows`` ``(N,)`` of the data file: ``(float16 (N, dim), found (N,) bool)``.

    Consecutive row numbers are read with one call; rows past the end of the file are not found.
    A missing file finds nothing.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.zeros((len(rows), dim), np.float16)
    found = np.zeros(len(rows), bool)
    if len(rows) == 0:
        return out, found
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    starts = np.flatnonzero(np.diff(ordered, prepend=ordered[0] - 2) != 1)
    ends = np.append(starts[1:], len(ordered))
    width = 2 * dim
    buffer = np.zeros((len(rows), dim), np.float16)
    view = memoryview(buffer).cast("B")
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return out, found
    with handle:
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            handle.seek(int(ordered[start]) * width)
            wanted = (end - start) * width
            got = 0
            while got < wanted:
                n = handle.readinto(view[start * width + got : end * width])
                if not n:
                    break
                got += n
            found[order[start : start + got // width]] = True
    out[order] = buffer
    return out, found


def append_rows(path: os.PathLike[str] | str, row_bytes: int, data: bytes) -> int:
    """Append whole rows to the data file (skipping a partial row left by a crash), flush them to
    disk, and return the number of the first row written. Call with the index's write lock held."""
    with open(path, "ab") as handle:
        end = handle.seek(0, os.SEEK_END)
        first = -(-end // row_bytes)
        handle.write(b"\0" * (first * row_bytes - end))
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return first
