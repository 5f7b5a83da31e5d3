"""Find image files: a recursive folder scan and the one-sub-folder-per-class layout.

Rules shared by both scans: image extensions in any letter case (:data:`IMAGE_EXTENSIONS`); files
and folders whose name starts with a dot are passed over; symbolic links are followed, but a folder
reached twice (a link loop, or two links to one folder) is scanned once; sub-folders that cannot be
read are skipped; results are sorted by path so the order is the same on every run.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import ImageRecord

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
"""Lower-case file name extensions (with the dot) treated as images; matched in any case."""


def is_image_name(name: str) -> bool:
    """True when ``name`` has an image extension (any letter case) and is not hidden."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


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
        reason = "permission denied" if isinstance(err, PermissionError) else err.strerror
        raise UsageError(f"cannot read folder {path}: {reason}") from None
    return path


def _walk(folder: str, seen: set[str]) -> Iterator[ImageRecord]:
    """Image records under ``folder`` (depth first); ``seen`` holds real paths of folders done."""
    real = os.path.realpath(folder)
    if real in seen:
        return
    seen.add(real)
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        log.info("skipping unreadable folder %s: %s", folder, err)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            info = entry.stat()  # follows symlinks
        except OSError:  # broken link, vanished file, no permission on the target
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(entry.path, seen)
        elif stat.S_ISREG(info.st_mode) and is_image_name(entry.name):
            yield ImageRecord.from_stat(entry.path, info)


def scan_folder(root: str | os.PathLike[str]) -> list[ImageRecord]:
    """All image files under ``root`` (recursive), sorted by path; paths are absolute.

    Raises :class:`UsageError` when ``root`` is missing, not a folder or unreadable.
    """
    path = _check_root(root)
    return sorted(_walk(path, set()), key=lambda r: r.path)


def scan_class_folders(root: str | os.PathLike[str]) -> dict[str, list[ImageRecord]]:
    """``{class name: records}`` for each visible sub-folder of ``root``, sorted by class name.

    The class name is the sub-folder's name; images nested deeper inside a class folder belong to
    that class; images directly in ``root`` are ignored. A class with no image maps to ``[]``
    (callers decide whether that is an error). Raises :class:`UsageError` like :func:`scan_folder`.
    """
    path = _check_root(root)
    seen_root = os.path.realpath(path)
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: e.name)
    classes: dict[str, list[ImageRecord]] = {}
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if not entry.is_dir():  # follows symlinks
                continue
        except OSError:
            continue
        classes[entry.name] = sorted(_walk(entry.path, {seen_root}), key=lambda r: r.path)
    return classes


def record_for(path: str | Path) -> ImageRecord:
    """The identity of one file (absolute path, size, times, inode); raises UsageError if missing."""
    path = Path(path).expanduser().absolute()
    try:
        info = path.stat()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    return ImageRecord.from_stat(str(path), info)
