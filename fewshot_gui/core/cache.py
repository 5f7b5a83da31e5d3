"""On-disk embedding cache, one per encoder: half precision rows in an append-only file,
memory-mapped for reading, indexed by SQLite on file identity ``(path, size, mtime_ns)``.

Crash safety: rows are appended and flushed to ``embeddings.f16`` *before* the SQLite transaction
that points at them commits, so an interrupted write leaves only unreferenced bytes at the end of the
file (skipped by the next append). A changed file has a new identity and is simply re-embedded.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fewshot_gui.core.types import ImageRecord

# Paths are stored as bytes (os.fsencode) so that names which are not valid UTF-8 work too.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    path BLOB NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, row INTEGER NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
"""
_LOOKUP_CHUNK = 500


def default_cache_dir() -> Path:
    """``$FEWSHOT_GUI_CACHE`` or the platform's user cache folder (e.g. ``~/.cache/fewshot-gui``)."""
    env = os.environ.get("FEWSHOT_GUI_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("fewshot-gui", appauthor=False))


def safe_id(encoder_id: str) -> str:
    """A folder name for an encoder id: readable prefix plus a hash, no path separators."""
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_id)[:40]
    return f"{readable}-{hashlib.sha1(encoder_id.encode()).hexdigest()[:10]}"


class EmbeddingCache:
    """Embeddings of ``dim`` floats per image for one encoder, stored under ``root/<encoder id>/``."""

    def __init__(self, root: str | Path, encoder_id: str, dim: int) -> None:
        self.folder = Path(root) / "embeddings" / safe_id(encoder_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dim = int(dim)
        self._row_bytes = 2 * self.dim
        self._data_path = self.folder / "embeddings.f16"
        self._db = sqlite3.connect(
            self.folder / "index.sqlite", timeout=30, check_same_thread=False
        )
        self._db.executescript(_SCHEMA)
        stored = self._db.execute("SELECT value FROM meta WHERE key='dim'").fetchone()
        if stored is None or int(stored[0]) != self.dim:
            self._reset()
        self._map: np.memmap | None = None

    def _reset(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM rows")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dim', ?)", (str(self.dim),))
        self._data_path.unlink(missing_ok=True)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def lookup(self, records: Sequence[ImageRecord]) -> np.ndarray:
        """Row number of each record's embedding, or -1 where it is not cached. Shape ``(N,)``."""
        rows = np.full(len(records), -1, dtype=np.int64)
        for start in range(0, len(records), _LOOKUP_CHUNK):
            chunk = records[start : start + _LOOKUP_CHUNK]
            keys = [os.fsencode(r.path) for r in chunk]
            wanted = {
                (k, r.size, r.mtime_ns): i
                for i, (k, r) in enumerate(zip(keys, chunk, strict=True), start)
            }
            marks = ",".join("?" * len(chunk))
            query = f"SELECT path, size, mtime_ns, row FROM rows WHERE path IN ({marks})"
            for path, size, mtime_ns, row in self._db.execute(query, keys):
                index = wanted.get((path, size, mtime_ns))
                if index is not None:
                    rows[index] = row
        return rows

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Embeddings at ``rows`` (from :meth:`lookup`, all ≥ 0) as float32 ``(len(rows), dim)``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, self.dim), np.float32)
        needed = int(rows.max()) + 1
        if self._map is None or self._map.shape[0] < needed:
            count = self._data_path.stat().st_size // self._row_bytes
            self._map = np.memmap(self._data_path, np.float16, "r", shape=(count, self.dim))
        return np.asarray(self._map[rows], dtype=np.float32)

    def get_many(self, records: Sequence[ImageRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(hit_indices, embeddings (H, dim), missing_indices)`` for a list of records."""
        rows = self.lookup(records)
        hit = np.flatnonzero(rows >= 0)
        return hit, self.read(rows[hit]), np.flatnonzero(rows < 0)

    def put_many(self, records: Sequence[ImageRecord], embeddings: np.ndarray) -> None:
        """Store ``embeddings`` ``(N, dim)`` for ``records`` (one transaction, crash safe)."""
        data = np.ascontiguousarray(embeddings, dtype=np.float16).reshape(len(records), self.dim)
        if not records:
            return
        with self._db:  # the write lock is held from here to commit: one writer at a time
            self._db.execute("BEGIN IMMEDIATE")
            with open(self._data_path, "ab") as handle:
                end = handle.seek(0, os.SEEK_END)
                first = -(-end // self._row_bytes)  # skip a partial row left by a crash
                handle.write(b"\0" * (first * self._row_bytes - end))
                handle.write(data.tobytes())
                handle.flush()
                os.fsync(handle.fileno())
            self._db.executemany(
                "INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)",
                [
                    (os.fsencode(r.path), r.size, r.mtime_ns, first + i)
                    for i, r in enumerate(records)
                ],
            )

    def close(self) -> None:
        self._map = None
        self._db.close()
