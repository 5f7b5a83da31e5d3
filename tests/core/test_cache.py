"""The embedding cache: hits, misses, changed files, crash safety, dimension changes."""

from __future__ import annotations

import numpy as np

from fewshot_gui.core.cache import EmbeddingCache, safe_id
from fewshot_gui.core.types import ImageRecord


def _records(n: int, mtime: int = 1) -> list[ImageRecord]:
    return [ImageRecord(f"/photos/img_{i}.jpg", 1000 + i, mtime) for i in range(n)]


def test_round_trip_in_half_precision(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc", dim=8)
    records = _records(5)
    data = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    cache.put_many(records, data)
    hit, embeddings, missing = cache.get_many(records)
    assert hit.tolist() == [0, 1, 2, 3, 4] and missing.size == 0
    np.testing.assert_allclose(embeddings, data, atol=2e-3)
    assert embeddings.dtype == np.float32


def test_survives_reopen_and_reports_misses(tmp_path):
    records = _records(4)
    data = np.arange(4 * 3, dtype=np.float32).reshape(4, 3)
    EmbeddingCache(tmp_path, "enc", 3).put_many(records[:2], data[:2])
    cache = EmbeddingCache(tmp_path, "enc", 3)
    hit, embeddings, missing = cache.get_many(records)
    assert hit.tolist() == [0, 1] and missing.tolist() == [2, 3]
    np.testing.assert_array_equal(embeddings, data[:2])


def test_changed_file_is_a_miss(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc", 3)
    cache.put_many(_records(1, mtime=1), np.ones((1, 3)))
    _, _, missing = cache.get_many(_records(1, mtime=2))
    assert missing.tolist() == [0]


def test_encoders_do_not_share_entries(tmp_path):
    EmbeddingCache(tmp_path, "enc-a", 3).put_many(_records(1), np.ones((1, 3)))
    _, _, missing = EmbeddingCache(tmp_path, "enc-b", 3).get_many(_records(1))
    assert missing.tolist() == [0]
    assert safe_id("a/b") != safe_id("a_b") and "/" not in safe_id("a/b")


def test_partial_row_from_a_crash_is_skipped(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc", 4)
    records = _records(3)
    cache.put_many(records[:1], np.full((1, 4), 1.0))
    # A crash mid-append leaves half a row that no index entry points to.
    with open(cache.folder / "embeddings.f16", "ab") as handle:
        handle.write(b"\x01\x02\x03")
    cache.close()
    cache = EmbeddingCache(tmp_path, "enc", 4)
    cache.put_many(records[1:], np.stack([np.full(4, 2.0), np.full(4, 3.0)]))
    hit, embeddings, _ = cache.get_many(records)
    assert hit.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(embeddings[:, 0], [1.0, 2.0, 3.0])


def test_dimension_change_resets(tmp_path):
    EmbeddingCache(tmp_path, "enc", 3).put_many(_records(1), np.ones((1, 3)))
    cache = EmbeddingCache(tmp_path, "enc", 5)
    assert len(cache) == 0
    assert cache.get_many(_records(1))[2].tolist() == [0]
