"""Export labeled images into ``DEST/<class>/`` by copy, move or symlink — safely, with undo.

* A file is never overwritten: name collisions get ``name (1).jpg``, ``name (2).jpg``, …
* Moves within one filesystem are a hard link plus unlink (atomic, refuses to overwrite); across
  filesystems the file is copied, verified (size and content hash), and only then the original deleted.
* Every operation is journalled in ``DEST/.fewshot-journal.jsonl`` (a ``begin`` line before, a ``done``
  line after), so :func:`undo_export` can reverse an export later — also after a restart or a crash.
* :func:`write_labels` writes a CSV or JSON of path, label, confidence and source (model / user).

No Qt here.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import UNKNOWN

JOURNAL_NAME = ".fewshot-journal.jsonl"
UNKNOWN_FOLDER = "_unknown"
MODES = ("copy", "move", "link")


@dataclass(frozen=True)
class LabelRow:
    """One image's label; ``source`` is ``"model"`` or ``"user"``."""

    path: str
    label: str
    confidence: float = 1.0
    source: str = "model"


@dataclass
class ExportResult:
    """What an export did: ``(source, destination)`` pairs, files left in place, failures."""

    done: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    journal: Path | None = None


@dataclass
class UndoResult:
    """What an undo did: files restored or removed, and failures with plain reasons."""

    undone: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def safe_folder_name(label: str) -> str:
    """A class name usable as one folder name on every common filesystem."""
    cleaned = "".join("_" if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in label).strip(" .")
    return cleaned or "_unnamed"


def unique_destination(folder: Path, name: str) -> Path:
    """``folder/name`` or, when taken, ``folder/stem (1).ext``, ``(2)``, … (never an existing one)."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while os.path.lexists(candidate):
        candidate = folder / f"{stem} ({n}){suffix}"
        n += 1
    return candidate


def _hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_exclusive(src: Path, dst: Path) -> None:
    """Copy bytes and metadata; fails (FileExistsError) rather than overwrite ``dst``."""
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    with contextlib.suppress(OSError):
        shutil.copystat(src, dst)


def _verified_copy(src: Path, dst: Path) -> None:
    _copy_exclusive(src, dst)
    if src.stat().st_size != dst.stat().st_size or _hash(src) != _hash(dst):
        dst.unlink(missing_ok=True)
        raise OSError(f"copy of {src} did not verify; original kept")


def _move(src: Path, dst: Path) -> None:
    """Move without ever overwriting; across devices: copy, verify, then delete the original."""
    try:
        os.link(src, dst)  # fails if dst exists: no overwrite, even in a race
    except OSError as error:
        if error.errno == errno.EEXIST:
            raise
        _verified_copy(src, dst)  # EXDEV or a filesystem without hard links
    os.unlink(src)


class Journal:
    """Append-only JSON-lines log of export operations (flushed and fsynced per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **entry: object) -> None:
        entry.setdefault("time", time.time())
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        return entries


def export_images(
    rows: Iterable[LabelRow],
    dest: str | os.PathLike[str],
    mode: str = "copy",
    unknown: str = "folder",
) -> ExportResult:
    """Put each image into ``dest/<label>/``.

    ``mode`` is ``copy``, ``move`` or ``link`` (symlink to the original). ``unknown`` is ``folder``
    (into ``dest/_unknown``) or ``leave`` (not exported). Raises UsageError for bad arguments; a
    file that cannot be exported is listed in ``failures`` and the rest go on.
    """
    if mode not in MODES:
        raise UsageError(f"unknown export mode {mode!r}: use copy, move or link")
    if unknown not in ("folder", "leave"):
        raise UsageError(f"unknown option {unknown!r} for unknown images: use folder or leave")
    root = Path(dest).expanduser().absolute()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create export folder {root}: {error.strerror or error}") from None
    journal = Journal(root / JOURNAL_NAME)
    export_id = f"{time.time_ns()}"
    journal.write(op="export", state="begin", id=export_id, mode=mode)
    result = ExportResult(journal=journal.path)
    for row in rows:
        src = Path(row.path).absolute()
        if row.label == UNKNOWN and unknown == "leave":
            result.skipped.append(str(src))
            continue
        folder = root / (UNKNOWN_FOLDER if row.label == UNKNOWN else safe_folder_name(row.label))
        try:
            if not src.is_file():
                raise FileNotFoundError(f"{src} no longer exists")
            if folder.resolve() == src.parent.resolve() and mode == "move":
                result.skipped.append(str(src))  # already in place
                continue
            folder.mkdir(parents=True, exist_ok=True)
            dst = unique_destination(folder, src.name)
            journal.write(op=mode, state="begin", id=export_id, src=str(src), dst=str(dst))
            if mode == "copy":
                _copy_exclusive(src, dst)
            elif mode == "link":
                os.symlink(src, dst)
            else:
                _move(src, dst)
            journal.write(op=mode, state="done", id=export_id, src=str(src), dst=str(dst))
            result.done.append((str(src), str(dst)))
        except OSError as error:
            reason = error.strerror or str(error)
            result.failures.append((str(src), reason))
    journal.write(op="export", state="done", id=export_id, count=len(result.done))
    return result


def _undo_one(op: str, src: Path, dst: Path) -> str | None:
    """Reverse one operation; returns a failure reason or None. Never deletes a user's only copy."""
    if op == "move":
        if src.exists():
            if dst.exists() and dst.stat().st_size == src.stat().st_size:
                dst.unlink()  # an interrupted cross-device move: the original is still there
            return None
        if not dst.exists():
            return f"{dst} is gone; cannot move it back"
        src.parent.mkdir(parents=True, exist_ok=True)
        _move(dst, src)
        return None
    if op == "link":
        if dst.is_symlink():
            dst.unlink()
        return None
    # copy: remove our copy only while the original still exists
    if not dst.exists():
        return None
    if not src.exists():
        return f"{src} is gone; keeping the copy {dst}"
    dst.unlink()
    return None


def undo_export(journal_path: str | os.PathLike[str]) -> UndoResult:
    """Reverse every not-yet-undone operation recorded in a journal, newest first.

    Works from the journal file alone (e.g. after a restart). Operations interrupted half-way
    (``begin`` without ``done``) are reversed too when that is safe. Empty class folders left behind
    are removed.
    """
    path = Path(journal_path)
    if path.is_dir():
        path = path / JOURNAL_NAME
    if not path.exists():
        raise UsageError(f"no export journal at {path}; nothing to undo")
    journal = Journal(path)
    entries = journal.read()
    undone = {(e["src"], e["dst"]) for e in entries if e.get("op") == "undo"}
    ops: dict[tuple[str, str], str] = {}
    for e in entries:
        if e.get("op") in MODES and "src" in e:
            ops[(e["src"], e["dst"])] = e["op"]
    result = UndoResult()
    folders: set[Path] = set()
    for (src, dst), op in reversed(list(ops.items())):
        if (src, dst) in undone:
            continue
        try:
            reason = _undo_one(op, Path(src), Path(dst))
        except OSError as error:
            reason = error.strerror or str(error)
        if reason:
            result.failures.append((dst, reason))
            continue
        journal.write(op="undo", src=src, dst=dst)
        result.undone.append((src, dst))
        folders.add(Path(dst).parent)
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty
    return result


def write_labels(rows: Sequence[LabelRow], path: str | os.PathLike[str]) -> Path:
    """Write a ``.csv`` or ``.json`` of path, label, confidence, source (atomically)."""
    target = Path(path).expanduser().absolute()
    tmp = target.with_name(f".{target.name}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".json":
        data = [
            {
                "path": r.path,
                "label": r.label,
                "confidence": round(float(r.confidence), 6),
                "source": r.source,
            }
            for r in rows
        ]
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "confidence", "source"])
            for r in rows:
                writer.writerow([r.path, r.label, f"{float(r.confidence):.6f}", r.source])
    os.replace(tmp, target)
    return target
