"""On-disk embedding cache, one per encoder: half precision rows appended to ``embeddings.f16``,
indexed by SQLite (``index.sqlite``) on the file's path and identity (size, mtime, ctime, inode).

The cache is an optimisation that cannot lie and heals itself:

* every index entry holds its row's checksum, which covers the row's bytes and its key
  (:mod:`fewshot_gui.core.cache_rows`): a damaged, garbled or swapped row is not a hit, the image is
  embedded again and its entry replaced;
* on open, an index that SQLite cannot read, one of another format version or embedding size, or one
  that is missing beside a data file is rebuilt; entries pointing past the end of a short data file
  are dropped;
* a cache that cannot be written (full disk, read-only, permissions) is used read-only for the rest
  of the run, and one that cannot be opened at all is not used.

Each such event is one line in :attr:`EmbeddingCache.warnings`, which the session passes on to the
user; nothing here raises for a damaged or unwritable cache.

Crash safety and concurrent runs: rows are appended and flushed under SQLite's write lock *before*
the transaction that points at them commits, so an interrupted write leaves only unreferenced bytes at
the end of the file (skipped by the next append).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from fewshot_gui.core import cache_rows
from fewshot_gui.core.paths import user_cache_dir
from fewshot_gui.core.types import ImageRecord

FORMAT = "3"
"""Version of the index and data file layout; a cache of any other version is rebuilt."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    path BLOB PRIMARY KEY, ident BLOB NOT NULL, row INTEGER NOT NULL, checksum INTEGER NOT NULL
);
"""
_LOOKUP_CHUNK = 500
_INDEX_FILES = ("index.sqlite", "index.sqlite-journal", "index.sqlite-wal", "index.sqlite-shm")


def default_cache_dir() -> Path:
    """Where embedding caches live: :func:`fewshot_gui.core.paths.user_cache_dir`."""
    return user_cache_dir()


def safe_id(encoder_id: str) -> str:
    """A folder name for an encoder id: readable prefix plus a hash, no path separators."""
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_id)[:40]
    return f"{readable}-{hashlib.sha1(encoder_id.encode()).hexdigest()[:10]}"


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        return str(error.strerror or error)
    text = str(error) or type(error).__name__
    if text == "unable to open database file":  # SQLite cannot create its journal or the index
        return f"cannot create files in its folder; SQLite: {text}"
    return text


class _Unusable(Exception):
    """The cache cannot be opened (it is then not used)."""


class EmbeddingCache:
    """Embeddings of ``dim`` floats per image for one encoder, stored under ``root/<encoder id>/``.

    ``usable`` is False when the cache could not be opened (every lookup misses, nothing is
    stored); ``writable`` turns False at the first write that fails.
    """

    def __init__(self, root: str | Path, encoder_id: str, dim: int) -> None:
        self.folder = Path(root) / "embeddings" / safe_id(encoder_id)
        self.dim = int(dim)
        self._row_bytes = 2 * self.dim
        self._data_path = self.folder / "embeddings.f16"
        self._index_path = self.folder / "index.sqlite"
        self._db: sqlite3.Connection | None = None
        self._problems: dict[str, str] = {}  # kind → one line for the user
        self._bad_rows = 0
        self._lost_rows = 0
        self.usable = self.writable = True
        try:
            self._open()
        except (_Unusable, OSError, sqlite3.Error) as error:
            self._give_up(error)

    # ------------------------------------------------------------------ reporting
    @property
    def warnings(self) -> list[str]:
        """One line per problem met so far (damage repaired, cache not writable, …)."""
        return list(self._problems.values())

    def _warn(self, kind: str, message: str) -> None:
        self._problems[kind] = message

    def _give_up(self, error: BaseException, verb: str = "use") -> None:
        """Stop using the cache for this run (one warning line)."""
        self._warn(
            "unusable",
            f"cannot {verb} the embedding cache {self.folder} ({_reason(error)}); "
            "continuing without it",
        )
        self.usable = self.writable = False
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _read_only(self, error: BaseException) -> None:
        if self.writable:
            self.writable = False
            self._warn(
                "unwritable",
                f"cannot write the embedding cache {self.folder} ({_reason(error)}); "
                "continuing without caching new embeddings",
            )

    # ------------------------------------------------------------------ opening and healing
    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._index_path, timeout=60, check_same_thread=False, isolation_level=None
        )

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: one writer at a time across processes; commits on success."""
        assert self._db is not None
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    def _open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _Unusable(_reason(error)) from None
        try:
            self._db = self._connect()
            damage = self._check_index()
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError) and not _is_damage(error):
                raise _Unusable(_reason(error)) from None
            damage = f"its index could not be read ({_reason(error)})"
        if damage is None:
            self._check_length()
            return
        try:
            self._rebuild(damage)
        except (OSError, sqlite3.Error) as error:
            raise _Unusable(_reason(error)) from None

    def _check_index(self) -> str | None:
        """None when the index is readable, of this format and size; else what is wrong."""
        assert self._db is not None
        check = self._db.execute("PRAGMA quick_check(1)").fetchone()
        if check is None or check[0] != "ok":
            return f"its index is damaged ({check[0] if check else 'no answer'})"
        meta = self._meta()
        if meta == {"format": FORMAT, "dim": str(self.dim)}:
            return None
        try:
            self._initialise()
        except sqlite3.OperationalError as error:
            if _is_damage(error):
                raise
            raise _Unusable(_reason(error)) from None
        except OSError as error:
            raise _Unusable(_reason(error)) from None
        return None

    def _meta(self) -> dict[str, str]:
        assert self._db is not None
        try:
            return dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return {}
            raise

    def _initialise(self) -> None:
        """Make an empty index of this format under the write lock (another process may have done
        so meanwhile); a stale data file beside it is removed and reported."""
        with self._write_lock() as db:
            meta = self._meta()
            if meta == {"format": FORMAT, "dim": str(self.dim)}:
                return
            db.execute("DROP TABLE IF EXISTS rows")  # format 1
            db.execute("DROP TABLE IF EXISTS entries")
            db.execute("DROP TABLE IF EXISTS meta")
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)", [("format", FORMAT), ("dim", str(self.dim))]
            )
            stale = self._data_path.exists()
            self._data_path.unlink(missing_ok=True)
        if not meta and stale:
            self._warn(
                "rebuilt",
                f"embedding cache {self.folder}: its index was missing or empty; rebuilt it",
            )
        elif meta.get("format") != FORMAT and meta:
            self._warn(
                "rebuilt", f"embedding cache {self.folder}: made by another version; rebuilt it"
            )
        elif meta:
            self._warn(
                "rebuilt",
                f"embedding cache {self.folder}: made for another embedding size; rebuilt it",
            )

    def _rebuild(self, damage: str) -> None:
        """Replace an index SQLite cannot read (and its data file) with an empty cache."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        for name in _INDEX_FILES:
            (self.folder / name).unlink(missing_ok=True)
        self._data_path.unlink(missing_ok=True)
        self._db = self._connect()
        self._initialise()
        self._warn("rebuilt", f"embedding cache {self.folder}: {damage}; rebuilt it")

    def _check_length(self) -> None:
        """Drop entries that point past the end of the data file (a short, empty or missing one)."""
        assert self._db is not None
        try:
            last = self._db.execute("SELECT MAX(row) FROM entries").fetchone()[0]
            if last is None or last < self._rows_in_file():
                return  # the index is read first: rows committed meanwhile only lengthen the file
            with self._write_lock() as db:
                count = self._rows_in_file()
                lost = db.execute("DELETE FROM entries WHERE row >= ?", (count,)).rowcount
        except sqlite3.OperationalError as error:
            self._read_only(error)  # the short rows will not verify: they are simply missed
            return
        except (sqlite3.Error, OSError) as error:
            self._give_up(error)
            return
        self._note_lost(lost)

    def _rows_in_file(self) -> int:
        try:
            return self._data_path.stat().st_size // self._row_bytes
        except FileNotFoundError:
            return 0

    def _note_lost(self, count: int) -> None:
        if count > 0:
            self._lost_rows += count
            self._warn(
                "short",
                f"embedding cache {self.folder}: its data file is missing or shorter than its index "
                f"({self._lost_rows} rows missing); those images are embedded again",
            )

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        if self._db is None:
            return 0
        with contextlib.suppress(sqlite3.Error):
            return int(self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
        return 0

    def _lookup(
        self, keys: Sequence[bytes], idents: Sequence[bytes]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row and checksum of each key whose stored identity matches; row -1 where none."""
        assert self._db is not None
        rows = np.full(len(keys), -1, dtype=np.int64)
        sums = np.zeros(len(keys), dtype=np.int64)
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            wanted = {k: i for i, k in enumerate(chunk, start)}
            marks = ",".join("?" * len(chunk))
            query = f"SELECT path, ident, row, checksum FROM entries WHERE path IN ({marks})"
            for path, ident, row, check in self._db.execute(query, chunk):
                index = wanted.get(path)
                if index is not None and ident == idents[index]:
                    rows[index], sums[index] = row, check
        return rows, sums

    def _nothing_cached(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32), np.arange(n)

    def get_many(self, records: Sequence[ImageRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(hit_indices, embeddings (H, dim) float32, missing_indices)`` for ``records``.

        A hit is an entry for the same file identity whose row is in the data file and verifies
        against its checksum; everything else is missing (and embedded again by the caller).
        """
        if self._db is None or not records:
            return self._nothing_cached(len(records))
        keys = [os.fsencode(r.path) for r in records]
        idents = [cache_rows.identity(r) for r in records]
        try:
            rows, sums = self._lookup(keys, idents)
        except sqlite3.Error as error:
            self._give_up(error, "read")
            return self._nothing_cached(len(records))
        candidates = np.flatnonzero(rows >= 0)
        try:
            data, found = cache_rows.read_rows(self._data_path, rows[candidates], self.dim)
        except OSError as error:
            self._give_up(error, "read")
            return self._nothing_cached(len(records))
        self._note_lost(int((~found).sum()))
        if len(candidates) < len(records):
            keys = [keys[i] for i in candidates]
            idents = [idents[i] for i in candidates]
        matches = cache_rows.checksums(keys, idents, data) == sums[candidates]
        valid = found & matches
        bad = int((found & ~matches).sum())
        if bad:
            self._bad_rows += bad
            self._warn(
                "checksum",
                f"embedding cache {self.folder}: {self._bad_rows} rows failed their checksum "
                "(damaged cache file); those images are embedded again",
            )
        hit = candidates[valid]
        missing = np.setdiff1d(np.arange(len(records)), hit, assume_unique=True)
        return hit, (data if valid.all() else data[valid]).astype(np.float32), missing

    # ------------------------------------------------------------------ writing
    def put_many(self, records: Sequence[ImageRecord], embeddings: np.ndarray) -> None:
        """Store ``embeddings`` ``(N, dim)`` for ``records`` (one transaction, crash safe).

        Rows that are not finite in half precision are not stored. A write that fails makes the
        cache read-only for the rest of the run (one warning); it never raises.
        """
        data = np.asarray(embeddings, dtype=np.float32).reshape(len(records), self.dim)
        with np.errstate(over="ignore", invalid="ignore"):
            half = data.astype(np.float16)
        keep = np.flatnonzero(np.isfinite(half).all(axis=1))
        if not self.writable or self._db is None or len(keep) == 0:
            return
        half = np.ascontiguousarray(half[keep])
        kept = [records[i] for i in keep]
        keys = [os.fsencode(r.path) for r in kept]
        idents = [cache_rows.identity(r) for r in kept]
        sums = cache_rows.checksums(keys, idents, half).tolist()
        try:
            with self._write_lock() as db:  # held from here to commit: one writer at a time
                first = cache_rows.append_rows(self._data_path, self._row_bytes, half.tobytes())
                db.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                    [
                        (k, i, first + n, s)
                        for n, (k, i, s) in enumerate(zip(keys, idents, sums, strict=True))
                    ],
                )
        except (OSError, sqlite3.Error) as error:
            self._read_only(error)

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


def _is_damage(error: sqlite3.Error) -> bool:
    """Whether an SQLite error means the index file is damaged (rather than locked or unwritable)."""
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
        return True
    text = str(error).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text
