"""The embedding cache cannot lie and heals itself: damaged, swapped, truncated or missing cache files
and unwritable caches give misses (never wrong rows, never an exception) and one warning line."""

from __future__ import annotations

import errno
import multiprocessing
import os
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fewshot_gui.core import cache as cache_module
from fewshot_gui.core import cache_rows
from fewshot_gui.core.cache import EmbeddingCache
from fewshot_gui.core.types import ImageRecord

DIM = 8


def _records(n: int, prefix: str = "img") -> list[ImageRecord]:
    return [ImageRecord(f"/photos/{prefix}_{i}.jpg", 1000 + i, 5, 7, 100 + i) for i in range(n)]


def _data(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float16).astype(np.float32)


def _filled(tmp_path: Path, n: int = 10) -> tuple[EmbeddingCache, list[ImageRecord], np.ndarray]:
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    records, data = _records(n), _data(n)
    cache.put_many(records, data)
    cache.close()
    return cache, records, data


def _reopen_and_check(tmp_path, records, data, hits: list[int] | None) -> EmbeddingCache:
    """Reopen; every hit must be the exact stored row; ``hits`` (None: any) are the hit indices."""
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    hit, embeddings, missing = cache.get_many(records)
    np.testing.assert_array_equal(embeddings, data[hit])
    assert sorted([*hit.tolist(), *missing.tolist()]) == list(range(len(records)))
    if hits is not None:
        assert hit.tolist() == hits
    return cache


def _data_file(cache: EmbeddingCache) -> Path:
    return cache.folder / "embeddings.f16"


def _rows(cache: EmbeddingCache) -> np.ndarray:
    return np.fromfile(_data_file(cache), np.float16).reshape(-1, DIM)


def test_a_clean_cache_has_no_warning_and_round_trips(tmp_path):
    _, records, data = _filled(tmp_path)
    cache = _reopen_and_check(tmp_path, records, data, list(range(10)))
    assert cache.warnings == [] and cache.usable and cache.writable


def test_truncated_data_file_drops_the_lost_rows(tmp_path):
    cache, records, data = _filled(tmp_path)
    path = _data_file(cache)
    os.truncate(path, path.stat().st_size // 2 + 3)  # half, mid-row
    cache = _reopen_and_check(tmp_path, records, data, list(range(5)))
    assert len(cache.warnings) == 1 and "shorter" in cache.warnings[0]
    # healed: the rest is stored again and the next open is clean
    cache.put_many(records[5:], data[5:])
    cache.close()
    assert _reopen_and_check(tmp_path, records, data, list(range(10))).warnings == []


def test_truncate_then_another_folder_then_the_first_again(tmp_path):
    """The issue's scenario: rows appended after a truncation once took the old rows' places."""
    cache, records, data = _filled(tmp_path)
    path = _data_file(cache)
    os.truncate(path, path.stat().st_size // 2)
    other, other_data = _records(10, "other"), _data(10, seed=1)
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    cache.put_many(other, other_data)  # lands where the first folder's rows 5..9 were
    assert len(cache.warnings) == 1
    cache.close()
    again = _reopen_and_check(tmp_path, records, data, list(range(5)))
    assert again.warnings == []
    _reopen_and_check(tmp_path, other, other_data, list(range(10)))


@pytest.mark.parametrize("damage", ["missing", "empty", "short by one byte"])
def test_missing_empty_or_short_data_file(tmp_path, damage):
    cache, records, data = _filled(tmp_path)
    path = _data_file(cache)
    if damage == "missing":
        path.unlink()
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        os.truncate(path, path.stat().st_size - 1)
    expected = list(range(9)) if damage == "short by one byte" else []
    cache = _reopen_and_check(tmp_path, records, data, expected)
    assert len(cache.warnings) == 1 and "shorter" in cache.warnings[0]


def test_finite_garbage_in_rows_is_never_returned(tmp_path):
    cache, records, data = _filled(tmp_path)
    rows = _rows(cache)
    rows[[2, 7]] = np.random.default_rng(5).normal(size=(2, DIM))  # plausible, finite values
    rows.tofile(_data_file(cache))
    cache = _reopen_and_check(tmp_path, records, data, [0, 1, 3, 4, 5, 6, 8, 9])
    assert len(cache.warnings) == 1 and "2 rows failed their checksum" in cache.warnings[0]


def test_swapped_rows_are_detected(tmp_path):
    cache, records, data = _filled(tmp_path)
    rows = _rows(cache)
    rows[[3, 4]] = rows[[4, 3]]
    rows.tofile(_data_file(cache))
    cache = _reopen_and_check(tmp_path, records, data, [0, 1, 2, 5, 6, 7, 8, 9])
    assert len(cache.warnings) == 1 and "checksum" in cache.warnings[0]


def test_swapped_index_entries_are_detected(tmp_path):
    cache, records, data = _filled(tmp_path)
    db = sqlite3.connect(cache.folder / "index.sqlite")
    with db:  # each entry now points at the other's row
        db.execute("UPDATE entries SET row = 1 - row WHERE row IN (0, 1)")
    db.close()
    cache = _reopen_and_check(tmp_path, records, data, list(range(2, 10)))
    assert len(cache.warnings) == 1


@pytest.mark.parametrize("damage", ["deleted", "empty", "garbage", "truncated"])
def test_damaged_or_missing_index_is_rebuilt(tmp_path, damage):
    cache, records, data = _filled(tmp_path, n=600)  # an index of several pages
    index = cache.folder / "index.sqlite"
    if damage == "deleted":
        index.unlink()
    elif damage == "empty":
        index.write_bytes(b"")
    elif damage == "garbage":
        index.write_bytes(np.random.default_rng(0).bytes(20_000))
    else:
        os.truncate(index, index.stat().st_size // 2)
    cache = _reopen_and_check(tmp_path, records, data, [])
    assert len(cache.warnings) == 1 and "rebuilt" in cache.warnings[0]
    cache.put_many(records, data)  # and it works again
    cache.close()
    assert _reopen_and_check(tmp_path, records, data, list(range(600))).warnings == []


def test_a_cache_of_the_previous_format_is_rebuilt(tmp_path):
    folder = EmbeddingCache(tmp_path, "enc", DIM).folder
    for name in ("index.sqlite", "embeddings.f16"):
        (folder / name).unlink(missing_ok=True)
    db = sqlite3.connect(folder / "index.sqlite")  # format 1: (path, size, mtime) → row, no checks
    with db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE rows (path BLOB NOT NULL, size INTEGER NOT NULL,"
            " mtime_ns INTEGER NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (path, size, mtime_ns));"
        )
        db.execute("INSERT INTO meta VALUES ('dim', ?)", (str(DIM),))
        db.execute("INSERT INTO rows VALUES (?, 1000, 5, 0)", (b"/photos/img_0.jpg",))
    db.close()
    np.zeros((1, DIM), np.float16).tofile(folder / "embeddings.f16")
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    assert cache.get_many(_records(1))[2].tolist() == [0]
    assert len(cache.warnings) == 1 and "another version" in cache.warnings[0]
    assert not (folder / "embeddings.f16").exists()


def test_identity_includes_ctime_and_inode(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    record = ImageRecord("/photos/a.jpg", 10, 5, 7, 3)
    cache.put_many([record], _data(1))
    for changed in (
        ImageRecord("/photos/a.jpg", 10, 5, 8, 3),  # content swapped in under a restored mtime
        ImageRecord("/photos/a.jpg", 10, 5, 7, 4),  # another file renamed over it
    ):
        assert cache.get_many([changed])[2].tolist() == [0]
    assert cache.get_many([record])[0].tolist() == [0]
    assert cache.warnings == []


def test_rows_not_finite_in_half_precision_are_not_stored(tmp_path):
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    data = _data(3)
    data[1, 0] = 1e6  # overflows float16
    data[2, 3] = np.nan
    cache.put_many(_records(3), data)
    hit, _, missing = cache.get_many(_records(3))
    assert hit.tolist() == [0] and missing.tolist() == [1, 2]


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_goes_on_without_caching(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    records, data = _records(6), _data(6)
    cache.put_many(records[:3], data[:3])
    monkeypatch.setattr(cache_rows, "append_rows", _full_disk)
    cache.put_many(records[3:], data[3:])  # no exception
    cache.put_many(records[3:], data[3:])
    assert not cache.writable
    assert cache.warnings == [
        f"cannot write the embedding cache {cache.folder} (No space left on device); "
        "continuing without caching new embeddings"
    ]
    hit, embeddings, missing = cache.get_many(records)  # what was stored is still used
    assert hit.tolist() == [0, 1, 2] and missing.tolist() == [3, 4, 5]
    np.testing.assert_array_equal(embeddings, data[:3])


def test_partial_append_on_a_full_disk_leaves_a_consistent_cache(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    records, data = _records(6), _data(6)
    cache.put_many(records[:3], data[:3])
    real = cache_rows.append_rows

    def half_then_full(path, row_bytes, payload):
        with open(path, "ab") as handle:
            handle.write(payload[: len(payload) // 2 + 1])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_rows, "append_rows", half_then_full)
    cache.put_many(records[3:], data[3:])
    cache.close()
    monkeypatch.setattr(cache_rows, "append_rows", real)
    cache = _reopen_and_check(tmp_path, records, data, [0, 1, 2])
    cache.put_many(records[3:], data[3:])
    cache.close()
    assert _reopen_and_check(tmp_path, records, data, list(range(6))).warnings == []


def test_read_only_index_goes_on_without_caching(tmp_path, monkeypatch):
    _, records, data = _filled(tmp_path, n=3)
    connect = sqlite3.connect

    def read_only(path, **kwargs):
        return connect(f"file:{path}?mode=ro", uri=True, **kwargs)

    monkeypatch.setattr(cache_module.sqlite3, "connect", read_only)
    cache = _reopen_and_check(tmp_path, records, data, [0, 1, 2])
    cache.put_many(_records(5)[3:], _data(5)[3:])  # SQLite: attempt to write a readonly database
    assert not cache.writable and len(cache.warnings) == 1
    assert "cannot write the embedding cache" in cache.warnings[0]


def test_a_cache_folder_that_cannot_be_made_is_not_used(tmp_path):
    blocker = tmp_path / "not a folder"
    blocker.write_text("x")
    cache = EmbeddingCache(blocker, "enc", DIM)
    assert not cache.usable
    cache.put_many(_records(2), _data(2))
    assert cache.get_many(_records(2))[2].tolist() == [0, 1]
    assert len(cache.warnings) == 1 and "continuing without it" in cache.warnings[0]


def _lock(folder: Path):
    """Make ``folder`` unwritable (chmod, or chattr +i for root); returns the undo, or None."""
    if os.name != "posix":
        return None
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["chattr", "-i", str(folder)], check=False)


def test_unwritable_cache_folder(tmp_path):
    cache, records, data = _filled(tmp_path, n=3)
    unlock = _lock(cache.folder)
    if unlock is None:
        pytest.skip("cannot make a folder unwritable here")
    try:
        cache = _reopen_and_check(tmp_path, records, data, [0, 1, 2])
        cache.put_many(_records(5)[3:], _data(5)[3:])
        assert not cache.writable and len(cache.warnings) == 1
        assert "cannot write the embedding cache" in cache.warnings[0]
        cache.close()
    finally:
        unlock()


def _writer(root: str, worker: int) -> None:
    cache = EmbeddingCache(root, "enc", DIM)
    records, data = _records(40), _data(40)
    for start in range(0, 40, 4):  # interleaved small transactions, same keys in every process
        cache.put_many(records[start : start + 4], data[start : start + 4] + 0)
    cache.close()


def test_concurrent_writers_agree(tmp_path):
    context = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
    workers = [context.Process(target=_writer, args=(str(tmp_path), i)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    cache = _reopen_and_check(tmp_path, _records(40), _data(40), list(range(40)))
    assert cache.warnings == []


def test_an_unreadable_data_file_is_not_used(tmp_path, monkeypatch):
    _, records, data = _filled(tmp_path, n=3)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cache_rows, "read_rows", denied)
    cache = EmbeddingCache(tmp_path, "enc", DIM)
    assert cache.get_many(records)[2].tolist() == [0, 1, 2]
    cache.put_many(records, data)  # no exception: the cache is no longer used
    assert not cache.usable and len(cache.warnings) == 1
    assert "cannot read the embedding cache" in cache.warnings[0]
