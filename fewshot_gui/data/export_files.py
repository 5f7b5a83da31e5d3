"""The file steps of an export, each safe to interrupt at any point.

* :func:`content_id` — a streamed content hash and the size: what undo compares before it touches a
  file.
* :func:`copy_to_temp` + :func:`place` — bytes go to a temporary name in the destination folder
  (the project's temp naming, ``core/atomic.py``), are fsynced, then get their final name without
  ever overwriting (a hard link, which fails on an existing name); no partial file carries a final name.
* :func:`hardlink` — a same-filesystem move's first step (the caller then unlinks the source).

No Qt.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from pathlib import Path

from fewshot_gui.core.atomic import TEMP_SUFFIX, fsync_folder, temp_prefix

CHUNK = 1 << 20
"""Bytes read and written per step when copying or hashing."""

_NO_HARD_LINK = {
    errno.EXDEV,
    errno.EPERM,
    errno.EMLINK,
    errno.ENOSYS,
    getattr(errno, "ENOTSUP", errno.EPERM),
    getattr(errno, "EOPNOTSUPP", errno.EPERM),
}
_BINARY = getattr(os, "O_BINARY", 0)


class SourceChanged(OSError):
    """The source's bytes changed between hashing and copying; nothing was placed."""


def content_id(path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(blake2b-128 hex digest, size in bytes)`` of a file's content, read in chunks."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    fd = os.open(path, os.O_RDONLY | _BINARY)
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest(), size


def holds(path: str | os.PathLike[str], digest: str, size: int) -> bool:
    """Whether ``path`` is a regular file (not a link) whose content is ``digest`` / ``size``."""
    try:
        if not os.path.isfile(path) or os.path.islink(path) or os.path.getsize(path) != size:
            return False
        return content_id(path)[0] == digest
    except OSError:
        return False


def links_to(link: str | os.PathLike[str], target: str | os.PathLike[str]) -> bool:
    """Whether ``link`` is a symbolic link whose text is ``target``."""
    try:
        return os.path.islink(link) and os.readlink(link) == os.fspath(target)
    except OSError:
        return False


def temp_name(final: Path) -> Path:
    """A fresh hidden temporary name beside ``final`` (``.<name>.<random>.tmp``)."""
    return final.parent / f"{temp_prefix(final)}{secrets.token_hex(6)}{TEMP_SUFFIX}"


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (one place to wrap, e.g. to simulate a full disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def copy_to_temp(src: Path, tmp: Path, digest: str) -> None:
    """Write ``src``'s bytes to the new file ``tmp`` and fsync it.

    Raises :class:`SourceChanged` when the bytes copied do not hash to ``digest``. On any error the
    caller removes ``tmp``.
    """
    check = hashlib.blake2b(digest_size=16)
    fd_in = os.open(src, os.O_RDONLY | _BINARY)
    try:
        fd_out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
        try:
            while chunk := os.read(fd_in, CHUNK):
                check.update(chunk)
                write_all(fd_out, chunk)
            os.fsync(fd_out)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    if check.hexdigest() != digest:
        raise SourceChanged(errno.EAGAIN, f"{src} changed while it was being copied")
    with contextlib.suppress(OSError):
        shutil.copystat(src, tmp)


def place(tmp: Path, final: Path) -> bool:
    """Give the complete file ``tmp`` the name ``final``; False (``tmp`` kept) when it is taken."""
    try:
        os.link(tmp, final)  # fails on an existing name: never an overwrite, even in a race
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_HARD_LINK:
            raise
        if os.path.lexists(final):  # a filesystem without hard links (FAT, some shares)
            return False
        os.rename(tmp, final)
    else:
        os.unlink(tmp)
    fsync_folder(final.parent)
    return True


def hardlink(src: Path, dst: Path) -> bool:
    """Link ``dst`` to ``src``'s content; False where that is impossible (another filesystem).

    Raises FileExistsError when ``dst`` exists.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno in _NO_HARD_LINK:
            return False
        raise
    fsync_folder(dst.parent)
    return True


def remove(path: str | os.PathLike[str]) -> None:
    """Unlink ``path`` if it exists and make that durable."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
        fsync_folder(Path(path).parent)


def safe_folder_name(label: str) -> str:
    """A class name usable as one folder name on every common filesystem."""
    cleaned = "".join("_" if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in label).strip(" .")
    return cleaned or "_unnamed"


def numbered_names(folder: Path, name: str):
    """``folder/name``, then ``folder/stem (1).ext``, ``(2)``, … (an endless iterator)."""
    yield folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while True:
        yield folder / f"{stem} ({n}){suffix}"
        n += 1


def unique_destination(folder: Path, name: str) -> Path:
    """The first of :func:`numbered_names` that does not exist."""
    return next(p for p in numbered_names(folder, name) if not os.path.lexists(p))


def move_file(src: Path, dst: Path, tmp: Path, digest: str) -> bool:
    """Move ``src`` to ``dst`` without overwriting; False (nothing moved) when ``dst`` is taken.

    One filesystem: a hard link, then the source is unlinked. Otherwise the bytes go to ``tmp``
    (checked against ``digest``), get the name ``dst``, and only then is the source unlinked. A crash
    at any point leaves the content at ``src``, at ``dst`` or at both, and at most ``tmp`` besides.
    """
    try:
        try:
            linked = hardlink(src, dst)
        except FileExistsError:
            return False
        if not linked:
            copy_to_temp(src, tmp, digest)
            if not place(tmp, dst):
                remove(tmp)
                return False
    except BaseException:
        with contextlib.suppress(OSError):
            remove(tmp)
        raise
    remove(src)
    return True
