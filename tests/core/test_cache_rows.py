"""The cache's row checksum: bound to the key, sensitive to every bit, independent of batching."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_gui.core import cache_rows
from fewshot_gui.core.types import ImageRecord


def _rows(n: int, dim: int) -> np.ndarray:
    return np.random.default_rng(dim).normal(size=(n, dim)).astype(np.float16)


def _sums(rows: np.ndarray, keys=None) -> np.ndarray:
    keys = keys or [f"/p/{i}.jpg".encode() for i in range(len(rows))]
    idents = [cache_rows.identity(ImageRecord(k.decode(), 1, 2, 3, 4)) for k in keys]
    return cache_rows.checksums(keys, idents, rows)


@pytest.mark.parametrize("dim", [5, 8, 130])  # padded to whole 64-bit words, or not
def test_every_single_bit_flip_changes_the_checksum(dim):
    row = _rows(1, dim)
    reference = _sums(row)[0]
    bits = row.view(np.uint8)
    for byte in range(bits.size):
        for bit in range(8):
            flipped = bits.copy()
            flipped[0, byte] ^= 1 << bit
            assert _sums(flipped.view(np.float16))[0] != reference, (byte, bit)


def test_moved_words_other_keys_and_batching():
    rows = _rows(200, 64)
    sums = _sums(rows)
    assert len(set(sums.tolist())) == 200
    np.testing.assert_array_equal(_sums(rows[:7]), sums[:7])  # no dependence on the batch
    swapped = rows.copy()
    swapped[0, :4], swapped[0, 4:8] = rows[0, 4:8], rows[0, :4]  # two 64-bit words exchanged
    assert _sums(swapped)[0] != sums[0]
    assert _sums(rows[:1], [b"/p/other.jpg"])[0] != sums[0]  # the same row under another key
    ident = cache_rows.identity(ImageRecord("/p/0.jpg", 1, 2, 3, 5))  # another inode
    assert cache_rows.checksums([b"/p/0.jpg"], [ident], rows[:1])[0] != sums[0]
