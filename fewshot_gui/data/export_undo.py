"""Undo an export by content, and settle what a killed export or undo left half-done.

Undo puts a file back (or removes a copy or link) only when the destination still holds exactly
the content the export wrote (hash and size in the journal). Anything else — a copy edited after the
export, a different photo that has since appeared under the original name — is left where it is and
reported as refused. Exports are undone one at a time, newest first. No Qt.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.export_files import holds, links_to, move_file, remove, temp_name
from fewshot_gui.data.export_journal import (
    DONE,
    JOURNAL_NAME,
    PENDING,
    REFUSED,
    ROLLEDBACK,
    UNDONE,
    ExportEntry,
    FileOp,
    Journal,
)


@dataclass
class UndoResult:
    """What an undo did: ``undone`` (image path, exported file) pairs put back or removed,
    ``refused`` (path, reason) left as they are, ``failures`` (path, reason) to retry."""

    dest: str = ""
    exports: list[str] = field(default_factory=list)
    undone: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    remaining: int = 0

    def summary(self) -> str:
        """One line for the user (the CLI prints it, the app shows it)."""
        if not self.exports:
            return f"nothing left to undo in {self.dest}"
        count = "1 export" if len(self.exports) == 1 else f"{len(self.exports)} exports"
        text = f"undid the export of {len(self.undone):,} files in {self.dest} ({count})"
        if self.refused:
            text += f"; {len(self.refused):,} refused (left as they are: their content changed)"
        if self.failures:
            text += f"; {len(self.failures):,} failed (try again)"
        if self.remaining:
            text += f"; {self.remaining} earlier export(s) can still be undone"
        return text


def settle(op: FileOp) -> str:
    """Finish or roll back, by content, an operation a crash or an error interrupted.

    Removes the operation's temporary files; returns DONE when the destination holds the complete
    result (and, for a move, the source is gone), else ROLLEDBACK with the content at its source.
    """
    for tmp in (op.tmp, op.undo_tmp):
        if tmp:
            remove(tmp)
    if op.state != PENDING:
        return op.state
    if op.op == "link":
        return DONE if links_to(op.dst, op.src) else ROLLEDBACK
    if not holds(op.dst, op.hash, op.size):
        return ROLLEDBACK
    if op.op != "copy" and holds(op.src, op.hash, op.size):
        remove(op.dst)  # a move stopped between link/copy and unlink: the source still has it
        return ROLLEDBACK
    return DONE


def settle_pending(journal: Journal, history: list[ExportEntry]) -> None:
    """Settle every operation left unfinished by a killed export or undo, and journal it."""
    for entry in history:
        for op in entry.ops:
            if op.state == PENDING or op.undo_tmp:
                was_pending = op.state == PENDING
                op.state = settle(op)
                op.tmp = op.undo_tmp = None
                if was_pending:
                    journal.append(op.state, op.export_id, n=op.n)


def _original_kept(src: Path, dst: Path, op: FileOp) -> bool:
    """Whether a copy's source still holds its content (through a link too, unless the link
    leads to the copy itself)."""
    real = os.path.realpath(src)
    return real != os.path.realpath(dst) and holds(real, op.hash, op.size)


def _undo_op(journal: Journal, op: FileOp) -> tuple[str, str]:
    """Reverse one done operation; returns (UNDONE or REFUSED, reason)."""
    src, dst = Path(op.src), Path(op.dst)
    if op.op == "link":
        if links_to(dst, src):
            remove(dst)
            return UNDONE, ""
        if not os.path.lexists(dst):
            return UNDONE, "already gone"
        return REFUSED, f"{dst} is no longer the link the export made; left as it is"
    ours = holds(dst, op.hash, op.size)
    if op.op == "copy":
        if not os.path.lexists(dst):
            return UNDONE, "already gone"
        if not ours:
            return REFUSED, f"{dst} was changed after the export; left as it is"
        if not _original_kept(src, dst, op):
            return REFUSED, f"the original {src} is gone or changed; its copy {dst} is kept"
        remove(dst)
        return UNDONE, ""
    if not ours:  # move or relabel
        if holds(src, op.hash, op.size):
            return UNDONE, "already back"
        if os.path.lexists(dst):
            return REFUSED, f"{dst} was changed after the export; left as it is"
        return REFUSED, f"{dst} is gone; nothing to put back at {src}"
    if os.path.lexists(src):
        if holds(src, op.hash, op.size):
            remove(dst)  # the same content is back at the source already
            return UNDONE, ""
        return REFUSED, f"{src} now holds a different file; the exported one stays at {dst}"
    src.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(src)
    journal.append("undo-begin", op.export_id, n=op.n, tmp=str(tmp))
    if not move_file(dst, src, tmp, op.hash):
        return REFUSED, f"{src} appeared during the undo; the exported one stays at {dst}"
    return UNDONE, ""


def undo_export(dest: str | os.PathLike[str], all_exports: bool = False) -> UndoResult:
    """Undo the newest export into ``dest`` not undone yet (``all_exports``: every one, newest
    first), from the journal alone — also in a new process after a crash.

    ``dest`` is the export folder (or its journal file). Raises UsageError when there is no journal
    or another export or undo is running there. Class folders left empty are removed.
    """
    root = Path(dest).expanduser().absolute()
    if root.name == JOURNAL_NAME:
        root = root.parent
    result = UndoResult(dest=str(root))
    folders: set[Path] = set()
    with Journal.open(root, create=False) as journal:
        try:
            _undo_entries(journal, all_exports, result, folders)
        except OSError as error:  # the journal could not be written: a rerun continues
            reason = error.strerror or str(error)
            raise UsageError(f"cannot undo in {root}: {reason}; nothing was lost") from None
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder != root and root in folder.parents:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
    return result


def _undo_entries(
    journal: Journal, all_exports: bool, result: UndoResult, folders: set[Path]
) -> None:
    history = journal.history()
    settle_pending(journal, history)
    todo = [e for e in reversed(history) if not e.closed and e.live()]
    for entry in todo if all_exports else todo[:1]:
        clean = True
        for op in reversed(entry.live()):
            try:
                state, reason = _undo_op(journal, op)
            except OSError as error:
                result.failures.append((op.dst, error.strerror or str(error)))
                clean = False
                continue
            journal.append(state, op.export_id, n=op.n, reason=reason)
            op.state = state
            if state == UNDONE:
                result.undone.append((op.src, op.dst))
                folders.add(Path(op.dst).parent)
            else:
                result.refused.append((op.dst, reason))
        if clean:
            journal.append("closed", entry.id)
            entry.closed = True
        result.exports.append(entry.id)
    result.remaining = sum(1 for e in history if not e.closed and e.live())
