"""Rows of the embedding cache's data file: keys, checksums, reading and appending.

A row is ``dim`` half-precision floats. Its 64-bit checksum covers the row's bytes *and* its key
(path plus file identity), so a row that is damaged, garbled, swapped with another or read from the
wrong place does not verify. The row part is computed with numpy over all rows at once (a cached
re-run checks every row it reads): each 64-bit word of the row is combined with a key for its
position and mixed by the splitmix64 finaliser, a bijection, and the words are summed; so a change
confined to one word is always detected and any other change escapes with probability about 2⁻⁶⁴.
The key part is a blake2b digest of the key. Reading uses plain file reads, never a memory map: a
data file that shrinks under a reader gives short reads (rows not found), not a crash.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence

import numpy as np

from fewshot_gui.core.types import ImageRecord

_IDENTITY = struct.Struct("<qqqQ")  # size, mtime_ns, ctime_ns, inode
_PERSON = b"fewshot-cache-3"
_CHUNK = 64  # rows mixed at a time: the temporaries stay in the CPU cache
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def identity(record: ImageRecord) -> bytes:
    """The file identity of ``record`` as stored in the index: size, mtime, ctime, inode."""
    return _IDENTITY.pack(record.size, record.mtime_ns, record.ctime_ns, record.inode % 2**64)


def _mix(x: np.ndarray, tmp: np.ndarray) -> None:
    """splitmix64's finaliser on a uint64 array, in place (``tmp``: scratch of the same shape)."""
    for shift, factor in ((30, _C1), (27, _C2), (31, None)):
        np.right_shift(x, np.uint64(shift), out=tmp)
        x ^= tmp
        if factor is not None:
            x *= factor


def _position_keys(words: int) -> np.ndarray:
    keys = np.arange(1, words + 1, dtype=np.uint64) * _GOLDEN
    _mix(keys, np.empty_like(keys))
    return keys


def _row_hashes(rows: np.ndarray) -> np.ndarray:
    """``(N,)`` uint64 hash of each row of ``rows`` ``(N, dim)`` float16 (little-endian bytes)."""
    rows = np.ascontiguousarray(rows, dtype="<f2")
    if rows.shape[1] % 4:
        rows = np.pad(rows, ((0, 0), (0, 4 - rows.shape[1] % 4)))
    words = rows.view("<u8")
    keys = _position_keys(words.shape[1])
    out = np.empty(len(rows), np.uint64)
    x = np.empty((min(_CHUNK, len(rows)), words.shape[1]), np.uint64)
    tmp = np.empty_like(x)
    for start in range(0, len(rows), _CHUNK):
        block = words[start : start + _CHUNK]
        part, scratch = x[: len(block)], tmp[: len(block)]
        np.bitwise_xor(block, keys, out=part)
        _mix(part, scratch)
        part.sum(axis=1, dtype=np.uint64, out=out[start : start + len(block)])
    return out


def _key_hashes(keys: Sequence[bytes], idents: Sequence[bytes]) -> np.ndarray:
    """``(N,)`` uint64 blake2b digests of each key followed by its identity."""
    digests = [
        hashlib.blake2b(k + i, digest_size=8, person=_PERSON).digest()
        for k, i in zip(keys, idents, strict=True)
    ]
    return np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64)


def checksums(keys: Sequence[bytes], idents: Sequence[bytes], rows: np.ndarray) -> np.ndarray:
    """Checksums of ``rows`` ``(N, dim)`` float16 bound to their keys: ``(N,)`` int64 (SQLite's
    INTEGER)."""
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    total = _row_hashes(rows) + _key_hashes(keys, idents)  # modulo 2**64
    _mix(total, np.empty_like(total))
    return total.view(np.int64)


def read_rows(
    path: os.PathLike[str] | str, rows: np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows`` ``(N,)`` of the data file: ``(float16 (N, dim), found (N,) bool)``.

    Runs of consecutive row numbers are read with one call each; rows past the end of the file
    are not found (zeros). A missing file finds nothing.
    """
    rows = np.asarray(rows, dtype=np.int64)
    found = np.zeros(len(rows), bool)
    in_order = bool(np.all(rows[1:] > rows[:-1]))  # the usual case: a folder cached in scan order
    order = np.arange(len(rows)) if in_order else np.argsort(rows, kind="stable")
    ordered = rows[order]
    buffer = np.zeros((len(rows), dim), np.float16)
    if len(rows) == 0:
        return buffer, found
    starts = np.flatnonzero(np.diff(ordered, prepend=ordered[0] - 2) != 1)
    ends = np.append(starts[1:], len(ordered))
    width = 2 * dim
    view = memoryview(buffer).cast("B")
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return buffer, found
    with handle:
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            handle.seek(int(ordered[start]) * width)
            got = 0
            while got < (end - start) * width:
                n = handle.readinto(view[start * width + got : end * width])
                if not n:
                    break
                got += n
            found[order[start : start + got // width]] = True
    if in_order:
        return buffer, found
    out = np.empty_like(buffer)
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
