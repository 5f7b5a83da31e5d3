"""Export labeled images into ``DEST/<class>/`` by copy, move or symlink — by content, with undo.

* Nothing is overwritten: name collisions get ``name (1).jpg``, ``name (2).jpg``, …
* Every file operation is journalled (``export_journal.py``) with the hash and size of the content
  it wrote, so :func:`undo_export` later touches only files that still hold exactly that content.
* Copies and moves across filesystems are written under a temporary name in the class folder,
  fsynced, and only then named (``export_files.py``); a move within one filesystem is a hard link and
  an unlink. No partial file ever carries a final name; whatever a killed export or undo left is
  settled by content at the start of the next export or undo (``export_undo.py``).
* Exporting again is idempotent: an image whose content is already in DEST is skipped ("already
  there"); when its label changed since, a move export moves it between class folders and a copy or
  link export reports it — never a second copy of one photo.
* A full disk stops the export with a plain message; what was exported so far stays, nothing is lost.

No Qt.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import UNKNOWN
from fewshot_gui.data import export_files as files
from fewshot_gui.data.export_journal import (
    DONE,
    FAILED,
    JOURNAL_NAME,
    FileOp,
    Journal,
    live_index,
    new_export_id,
)
from fewshot_gui.data.export_undo import UndoResult, settle, settle_pending, undo_export
from fewshot_gui.data.labels_csv import LabelRow
from fewshot_gui.data.labels_csv import write_labels as _write_labels

__all__ = [
    "JOURNAL_NAME",
    "MODES",
    "UNKNOWN_CHOICES",
    "ExportResult",
    "LabelRow",
    "UndoResult",
    "export_images",
    "undo_export",
    "write_labels",
]

UNKNOWN_FOLDER = "_unknown"
MODES = ("copy", "move", "link")
UNKNOWN_CHOICES = ("folder", "skip")
_FULL_DISK = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
safe_folder_name = files.safe_folder_name
unique_destination = files.unique_destination


@dataclass
class ExportResult:
    """What an export did. ``done``: (image, exported file); ``already``: images whose content was
    in DEST already; ``relabeled``: (old, new) files moved between class folders; ``label_changed``:
    (image, its earlier export) whose label changed, left where they were (copy / link);
    ``skipped``: unknown images left in place; ``invalid``: rows with an error or no label;
    ``failures``: (image, reason); ``stopped``: why the export stopped early, if it did."""

    mode: str = "copy"
    dest: str = ""
    done: list[tuple[str, str]] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    relabeled: list[tuple[str, str]] = field(default_factory=list)
    label_changed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    stopped: str | None = None
    journal: Path | None = None
    export_id: str = ""

    def summary(self) -> str:
        """One line for the user (the CLI prints it, the app shows it)."""
        verb = {"copy": "copied", "move": "moved", "link": "linked"}[self.mode]
        parts = [
            f"exported {len(self.done):,} images ({verb}) into {self.dest}",
            f"{len(self.already):,} already there",
            f"{len(self.relabeled):,} moved between classes",
            f"{len(self.invalid):,} rows with errors skipped",
        ]
        if self.label_changed:
            parts.append(
                f"{len(self.label_changed):,} with a changed label left in their earlier class "
                "(re-export by move to move them)"
            )
        if self.skipped:
            parts.append(f"{len(self.skipped):,} unknown left in place")
        if self.failures:
            parts.append(f"{len(self.failures):,} failed")
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return "; ".join(parts)


def export_images(
    rows: Iterable[LabelRow],
    dest: str | os.PathLike[str],
    mode: str = "copy",
    unknown: str = "folder",
) -> ExportResult:
    """Put each labeled image into ``dest/<label>/`` (unknown: ``dest/_unknown``).

    ``mode``: ``copy``, ``move`` or ``link`` (a symlink to the image). ``unknown``: ``folder`` or
    ``skip`` (``leave`` too: not exported). Raises UsageError for bad arguments or an unusable
    ``dest``; an image that cannot be exported is listed in ``failures`` and the rest go on.
    """
    if mode not in MODES:
        raise UsageError(f"unknown export mode {mode!r}: use copy, move or link")
    unknown = "skip" if unknown == "leave" else unknown
    if unknown not in UNKNOWN_CHOICES:
        raise UsageError(f"unknown option {unknown!r} for unknown images: use folder or skip")
    root = Path(dest).expanduser().absolute()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the export folder {root}: {error.strerror}") from None
    result = ExportResult(mode=mode, dest=str(root), journal=root / JOURNAL_NAME)
    with Journal.open(root, create=True) as journal:
        try:
            _export_rows(journal, rows, root, mode, unknown, result)
        except OSError as error:  # the journal itself could not be written or settled
            if error.errno not in _FULL_DISK:
                reason = error.strerror or str(error)
                raise UsageError(f"cannot export into {root}: {reason}") from None
            result.stopped = _full_disk(root)
    return result


def _full_disk(root: Path) -> str:
    return (
        f"no space left on the destination ({root}); the images not exported are where they "
        "were, no partial file was left: free some space and export again (what is there "
        "already is skipped)"
    )


def _export_rows(
    journal: Journal,
    rows: Iterable[LabelRow],
    root: Path,
    mode: str,
    unknown: str,
    result: ExportResult,
) -> None:
    history = journal.history()
    settle_pending(journal, history)
    exporter = _Exporter(journal, root, mode, unknown, live_index(history), result)
    journal.append("export", exporter.id, mode=mode, t=float(exporter.id[:20]) / 1e9)
    for row in rows:
        try:
            exporter.row(row)
        except OSError as error:
            if error.errno in _FULL_DISK:
                result.stopped = _full_disk(root)
                return
            result.failures.append((row.path, error.strerror or str(error)))
    journal.append("end", exporter.id)


class _Exporter:
    """Exports rows one at a time into ``root`` within one journalled export."""

    def __init__(
        self,
        journal: Journal,
        root: Path,
        mode: str,
        unknown: str,
        index: dict[str, FileOp],
        result: ExportResult,
    ) -> None:
        self.journal, self.root, self.mode, self.unknown = journal, root, mode, unknown
        self.index, self.result = index, result
        self.id = result.export_id = new_export_id()
        self.n = 0

    def row(self, row: LabelRow) -> None:
        result = self.result
        if row.error or not row.label.strip() or not row.path:
            result.invalid.append(row.path)
            return
        if row.label == UNKNOWN and self.unknown == "skip":
            result.skipped.append(row.path)
            return
        origin = os.path.abspath(row.path)
        src = Path(origin)
        name = UNKNOWN_FOLDER if row.label == UNKNOWN else files.safe_folder_name(row.label)
        folder = self.root / name
        ident = files.content_id(src) if os.path.isfile(src) else None
        prev = self.index.get(origin)
        same = prev is not None and (ident is None or ident == (prev.hash, prev.size))
        if prev is not None and same and self._still_there(prev):
            self._exported_before(origin, prev, folder, present=ident is not None)
            return
        # a different photo now at a path exported before is exported as a new image
        if ident is None:
            raise FileNotFoundError(errno.ENOENT, f"{src} no longer exists")
        if self.mode == "move" and src.is_symlink():
            result.failures.append((origin, "a link to another file: not moved (copy or link it)"))
            return
        if self._same_in(folder, src, ident) or (
            self.mode == "move" and os.path.realpath(folder) == os.path.realpath(src.parent)
        ):
            result.already.append(origin)
            return
        folder.mkdir(parents=True, exist_ok=True)
        dst = files.unique_destination(folder, src.name)
        self._run(self.mode, src, dst, origin, ident)
        result.done.append((origin, str(dst)))

    def _still_there(self, prev: FileOp) -> bool:
        if (prev.op == "link") != (self.mode == "link"):
            return False  # a link does not stand for a copy, nor a copy for a link
        if prev.op == "link":
            return files.links_to(prev.dst, prev.src)
        return files.holds(prev.dst, prev.hash, prev.size)

    def _exported_before(self, origin: str, prev: FileOp, folder: Path, present: bool) -> None:
        """The image's content is in DEST from an earlier export, at ``prev.dst``."""
        if Path(prev.dst).parent == folder:
            self.result.already.append(origin)
        elif self.mode == "move" and not present and prev.op in ("move", "relabel"):
            folder.mkdir(parents=True, exist_ok=True)
            dst = files.unique_destination(folder, Path(origin).name)
            self._run("relabel", Path(prev.dst), dst, origin, (prev.hash, prev.size))
            self.result.relabeled.append((prev.dst, str(dst)))
        else:
            self.result.label_changed.append((origin, prev.dst))

    def _same_in(self, folder: Path, src: Path, ident: tuple[str, int]) -> bool:
        """Whether ``folder`` holds this image already under its name or a numbered variant."""
        for candidate in files.numbered_names(folder, src.name):
            if not os.path.lexists(candidate):
                return False
            if self.mode == "link":
                if files.links_to(candidate, src):
                    return True
            elif files.holds(candidate, *ident):
                return True
        return False  # unreachable: the names never run out

    def _run(self, kind: str, src: Path, dst: Path, origin: str, ident: tuple[str, int]) -> None:
        """One journalled file operation; raises OSError (after settling it) when it fails."""
        self.n += 1
        tmp = files.temp_name(dst) if kind != "link" else None
        op = FileOp(self.id, self.n, kind, str(src), str(dst), origin, *ident)
        op.tmp = str(tmp) if tmp else None
        self.journal.append(
            "begin",
            self.id,
            n=op.n,
            op=kind,
            src=op.src,
            dst=op.dst,
            origin=origin,
            hash=op.hash,
            size=op.size,
            tmp=op.tmp,
        )
        try:
            placed = self._perform(kind, src, dst, tmp, op.hash)
        except OSError:
            outcome = settle(op)
            self.journal.append(outcome if outcome == DONE else FAILED, self.id, n=op.n)
            if outcome != DONE:
                raise
            placed = True
        if not placed:
            self.journal.append(FAILED, self.id, n=op.n)
            raise FileExistsError(errno.EEXIST, f"{dst} appeared during the export; try again")
        self.journal.append(DONE, self.id, n=op.n)
        op.state = DONE
        self.index[origin] = op

    @staticmethod
    def _perform(kind: str, src: Path, dst: Path, tmp: Path | None, digest: str) -> bool:
        if kind == "link":
            try:
                os.symlink(src, dst)
            except FileExistsError:
                return False
            return True
        assert tmp is not None
        if kind == "copy":
            files.copy_to_temp(src, tmp, digest)
            if files.place(tmp, dst):
                return True
            files.remove(tmp)
            return False
        return files.move_file(src, dst, tmp, digest)


def write_labels(rows: Sequence[LabelRow], path: str | os.PathLike[str]) -> Path:
    """Write the app's labels file (``.csv`` or ``.json``): path, label, confidence, error,
    source (model / user), through the one labels writer."""
    return _write_labels(path, rows, source=True)
