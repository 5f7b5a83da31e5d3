"""Find image files: a recursive folder scan and the one-sub-folder-per-class layout.

Rules shared by both scans: a file is an image when its extension (any letter case) is one of a
format the installed Pillow reads (:data:`IMAGE_EXTENSIONS`, from :mod:`fewshot_gui.data.formats`);
symbolic links are followed, but a folder reached twice (a link loop, or two links to one folder) is
scanned once; results are sorted by path so the order is the same on every run.

Nothing found is dropped without a word: :func:`scan` and :func:`scan_classes` also return every
path found but not used, with a plain reason (a named pipe, a socket or device, a broken link, a
folder that cannot be read, a file that is not an image format, an image loose in the support
folder), and how many hidden names (starting with ``.``: ``.git``, ``.DS_Store``, ``._IMG.jpg``)
were passed over; hidden folders are not entered. :func:`scan_folder` and
:func:`scan_class_folders` return the images alone.

Importing this module is cheap (no Pillow): the extension list is built on first use.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure, ImageRecord
from fewshot_gui.data.formats import image_extensions

log = logging.getLogger(__name__)


class _Extensions(AbstractSet[str]):
    """A read-only set filled from Pillow on first use (its plug-ins take ~0.1–0.2 s to load), so
    ``from fewshot_gui.data.folder import IMAGE_EXTENSIONS`` costs nothing at start-up."""

    def __contains__(self, item: object) -> bool:
        return item in image_extensions()

    def __iter__(self) -> Iterator[str]:
        return iter(image_extensions())

    def __len__(self) -> int:
        return len(image_extensions())

    @classmethod
    def _from_iterable(cls, it: Iterable[str]) -> frozenset[str]:  # results of & | - ^
        return frozenset(it)

    def __repr__(self) -> str:
        return f"IMAGE_EXTENSIONS({sorted(self)})"


IMAGE_EXTENSIONS: AbstractSet[str] = _Extensions()
"""Lower-case file name extensions (with the dot) treated as images; matched in any case."""


def is_image_name(name: str) -> bool:
    """True when ``name`` has an image extension (any letter case) and is not hidden."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in image_extensions()


@dataclass
class FolderScan:
    """What a recursive scan found: images, paths not used (with reasons), hidden names."""

    records: list[ImageRecord] = field(default_factory=list)
    skipped: list[FileFailure] = field(default_factory=list)
    hidden: int = 0


@dataclass
class ClassScan:
    """What a class-folder scan found: ``{class: images}``, paths not used, hidden names."""

    classes: dict[str, list[ImageRecord]] = field(default_factory=dict)
    skipped: list[FileFailure] = field(default_factory=list)
    hidden: int = 0


def _check_root(root: str | os.PathLike[str]) -> str:
    """Absolute path of ``root``, or :class:`UsageError` when it is not a readable folder."""
    path = os.path.abspath(os.path.expanduser(os.fspath(root)))
    if not os.path.exists(path):
        raise UsageError(f"folder not found: {path}")
    if not os.path.isdir(path):
        raise UsageError(f"not a folder: {path}")
    try:
        with os.scandir(path):
            pass
    except OSError as err:
        raise UsageError(f"cannot read folder {path}: {_os_reason(err)}") from None
    return path


def _os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    return err.strerror or str(err)


def _stat_problem(entry: os.DirEntry[str], err: OSError) -> str:
    """Why an entry's ``stat`` (following links) failed, in plain words."""
    if err.errno == errno.ELOOP:
        return "link loop (the link leads back to itself)"
    if entry.is_symlink():
        if isinstance(err, FileNotFoundError):
            return "broken link (its target does not exist)"
        return f"link whose target cannot be read ({_os_reason(err)})"
    if isinstance(err, FileNotFoundError):
        return "disappeared during the scan"
    return f"cannot read ({_os_reason(err)})"


def _kind_problem(mode: int) -> str:
    """Why a path that is neither a folder nor a regular file is not used."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not an image file"
    if stat.S_ISSOCK(mode):
        return "a socket, not an image file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not an image file"
    return "not a regular file"


def _name_problem(name: str) -> str:
    ext = os.path.splitext(name)[1]
    return f"not an image format ({ext})" if ext else "not an image format (no file extension)"


def _entries(folder: str, found: FolderScan) -> list[os.DirEntry[str]] | None:
    """Sorted entries of ``folder``, or None (recorded as skipped) when it cannot be read."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as err:
        log.info("skipping unreadable folder %s: %s", folder, err)
        found.skipped.append(FileFailure(folder, f"folder cannot be read ({_os_reason(err)})"))
        return None


def _walk(folder: str, seen: set[str], found: FolderScan) -> Iterator[ImageRecord]:
    """Image records under ``folder`` (depth first); ``seen`` holds real paths of folders done;
    paths not used and hidden names are added to ``found``."""
    real = os.path.realpath(folder)
    if real in seen:
        return
    seen.add(real)
    entries = _entries(folder, found)
    for entry in entries or ():
        if entry.name.startswith("."):
            found.hidden += 1
            continue
        try:
            info = entry.stat()  # follows symlinks
        except OSError as err:  # broken link, loop, vanished file, no permission on the target
            found.skipped.append(FileFailure(entry.path, _stat_problem(entry, err)))
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(entry.path, seen, found)
        elif not stat.S_ISREG(info.st_mode):
            found.skipped.append(FileFailure(entry.path, _kind_problem(info.st_mode)))
        elif is_image_name(entry.name):
            yield ImageRecord.from_stat(entry.path, info)
        else:
            found.skipped.append(FileFailure(entry.path, _name_problem(entry.name)))


def _sorted(found: FolderScan) -> FolderScan:
    found.skipped.sort(key=lambda f: f.path)
    return found


def scan(root: str | os.PathLike[str]) -> FolderScan:
    """Every image file under ``root`` (recursive, sorted by path, absolute), and what was not used.

    Raises :class:`UsageError` when ``root`` is missing, not a folder or unreadable.
    """
    found = FolderScan()
    found.records = sorted(_walk(_check_root(root), set(), found), key=lambda r: r.path)
    return _sorted(found)


def scan_folder(root: str | os.PathLike[str]) -> list[ImageRecord]:
    """All image files under ``root`` (recursive), sorted by path; paths are absolute.

    Raises :class:`UsageError` when ``root`` is missing, not a folder or unreadable.
    """
    return scan(root).records


def scan_classes(root: str | os.PathLike[str]) -> ClassScan:
    """``{class name: records}`` for each visible sub-folder of ``root``, sorted by class name, and
    every path found but not used.

    The class name is the sub-folder's name; images nested deeper inside a class folder belong to
    that class. A file directly in ``root`` belongs to no class and is listed as not used. A class
    with no image (or an unreadable class folder) maps to ``[]``: callers decide whether that is an
    error. Raises :class:`UsageError` like :func:`scan`.
    """
    path = _check_root(root)
    seen_root = os.path.realpath(path)
    found = FolderScan()
    classes: dict[str, list[ImageRecord]] = {}
    for entry in _entries(path, found) or ():
        if entry.name.startswith("."):
            found.hidden += 1
            continue
        try:
            info = entry.stat()
        except OSError as err:
            found.skipped.append(FileFailure(entry.path, _stat_problem(entry, err)))
            continue
        if stat.S_ISDIR(info.st_mode):
            records = _walk(entry.path, {seen_root}, found)
            classes[entry.name] = sorted(records, key=lambda r: r.path)
        elif stat.S_ISREG(info.st_mode) and is_image_name(entry.name):
            reason = "an image outside the class folders (put it in a class's folder)"
            found.skipped.append(FileFailure(entry.path, reason))
        elif stat.S_ISREG(info.st_mode):
            found.skipped.append(FileFailure(entry.path, "not a class folder"))
        else:
            found.skipped.append(FileFailure(entry.path, _kind_problem(info.st_mode)))
    _sorted(found)
    return ClassScan(classes, found.skipped, found.hidden)


def scan_class_folders(root: str | os.PathLike[str]) -> dict[str, list[ImageRecord]]:
    """``{class name: records}`` of :func:`scan_classes`, without what was not used."""
    return scan_classes(root).classes


def record_for(path: str | Path) -> ImageRecord:
    """The identity of one file (absolute path, size, times, inode); raises UsageError if missing."""
    path = Path(path).expanduser().absolute()
    try:
        info = path.stat()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    return ImageRecord.from_stat(str(path), info)
