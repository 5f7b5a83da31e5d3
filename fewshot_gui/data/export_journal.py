"""The export journal: ``DEST/.fewshot-journal.jsonl``, one JSON record per line, fsynced per record.

An append-only log is the one file the export writes without ``core/atomic.py``: rewriting it whole
per record would cost O(n²), and a record cut short by a crash is simply skipped on reading.

Records (``"v": 2``), in the order they happen:

* ``{"ev": "export", "id", "mode", "t"}`` — an export starts; ``id`` is unique and sorts by time.
* ``{"ev": "begin", "id", "n", "op", "src", "dst", "origin", "hash", "size", "tmp"}`` — before file
  operation ``n`` (``op``: copy, move, link, or relabel: a move between class folders). ``origin`` is
  the image's path in the labels; ``hash``/``size`` the content written; ``tmp`` its temporary name.
* ``{"ev": "done" | "failed" | "rolledback", "id", "n"}`` — how operation ``n`` ended.
* ``{"ev": "end", "id"}`` — the export finished.
* ``{"ev": "undo-begin", "id", "n", "tmp"}``, ``{"ev": "undone" | "refused", "id", "n", "reason"}``,
  ``{"ev": "closed", "id"}`` — the same for an undo; a closed export is not undone again.

:func:`read_history` turns the records into :class:`ExportEntry` objects. No Qt.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fewshot_gui.core.atomic import fsync_folder
from fewshot_gui.core.errors import UsageError

JOURNAL_NAME = ".fewshot-journal.jsonl"
VERSION = 2
PENDING, DONE, FAILED, ROLLEDBACK, UNDONE, REFUSED = (
    "begin",
    "done",
    "failed",
    "rolledback",
    "undone",
    "refused",
)


@dataclass
class FileOp:
    """One journalled file operation and its latest state."""

    export_id: str
    n: int
    op: str
    src: str
    dst: str
    origin: str
    hash: str
    size: int
    tmp: str | None = None
    state: str = PENDING
    undo_tmp: str | None = None  # a temporary file an unfinished undo of this operation made


@dataclass
class ExportEntry:
    """One export: its id, mode and file operations in the order they ran."""

    id: str
    mode: str
    time: float
    ops: list[FileOp] = field(default_factory=list)
    closed: bool = False

    def live(self) -> list[FileOp]:
        """Operations whose result is (or may still be) in the destination."""
        return [op for op in self.ops if op.state == DONE]


class Journal:
    """An open journal: appends are durable (fsync per record); holds an exclusive lock."""

    def __init__(self, root: Path, fd: int) -> None:
        self.path = root / JOURNAL_NAME
        self._fd = fd

    @classmethod
    @contextlib.contextmanager
    def open(cls, root: Path, create: bool) -> Iterator[Journal]:
        """Open ``root``'s journal for appending; UsageError when absent (and not ``create``) or
        when another export or undo holds it."""
        path = root / JOURNAL_NAME
        if not create and not path.exists():
            raise UsageError(f"no export journal in {root}: nothing to undo")
        existed = path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0))
        except OSError as error:
            raise UsageError(f"cannot write the export journal {path}: {error.strerror}") from None
        try:
            if not existed:
                fsync_folder(root)
            _lock(fd, root)
            journal = cls(root, fd)
            if not _ends_cleanly(path):
                journal._write(b"\n")  # end a record a crash cut short: the next one stays whole
            yield journal
        finally:
            os.close(fd)

    def append(self, ev: str, export_id: str, **fields: object) -> None:
        record = {"v": VERSION, "ev": ev, "id": export_id, **fields}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self._write(line.encode("utf-8", "surrogateescape"))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def history(self) -> list[ExportEntry]:
        return read_history(self.path)


def _ends_cleanly(path: Path) -> bool:
    """Whether the journal is empty or its last record is complete (ends with a newline)."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _lock(fd: int, root: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise UsageError(f"another export or undo is working in {root}; try again later") from None


def new_export_id() -> str:
    """A unique id that sorts by time."""
    return f"{time.time_ns():020d}-{os.getpid()}"


def read_history(path: Path) -> list[ExportEntry]:
    """Every export recorded in the journal at ``path``, oldest first (records of older versions
    and lines cut short by a crash are skipped)."""
    entries: dict[str, ExportEntry] = {}
    ops: dict[tuple[str, int], FileOp] = {}
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    for line in raw.decode("utf-8", "surrogateescape").splitlines():
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or record.get("v") != VERSION:
                continue
            _apply(record, entries, ops)
        except (ValueError, KeyError, TypeError):
            continue
    return list(entries.values())


def _apply(
    record: dict, entries: dict[str, ExportEntry], ops: dict[tuple[str, int], FileOp]
) -> None:
    ev, export_id = record["ev"], str(record["id"])
    if ev == "export":
        entries[export_id] = ExportEntry(export_id, record["mode"], float(record.get("t", 0)))
        return
    entry = entries[export_id]
    if ev == "end":
        return
    if ev == "closed":
        entry.closed = True
        return
    if ev == "begin":
        op = FileOp(
            export_id,
            int(record["n"]),
            record["op"],
            record["src"],
            record["dst"],
            record["origin"],
            record["hash"],
            int(record["size"]),
            record.get("tmp"),
        )
        ops[(export_id, op.n)] = op
        entry.ops.append(op)
        return
    op = ops[(export_id, int(record["n"]))]
    if ev == "undo-begin":
        op.undo_tmp = record.get("tmp")
    elif ev in (DONE, FAILED, ROLLEDBACK, UNDONE, REFUSED):
        op.state = ev
        op.undo_tmp = None
        if ev in (DONE, FAILED, ROLLEDBACK):
            op.tmp = None  # removed before the outcome was written


def live_index(history: list[ExportEntry]) -> dict[str, FileOp]:
    """For each image path (``origin``), the operation that last put its content into the
    destination and was not undone."""
    stacks: dict[str, list[FileOp]] = {}
    for entry in history:
        for op in entry.ops:
            if op.state in (DONE, REFUSED):
                stacks.setdefault(op.origin, []).append(op)
    return {origin: stack[-1] for origin, stack in stacks.items()}
