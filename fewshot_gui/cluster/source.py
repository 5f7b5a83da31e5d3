"""What ``IMAGES`` names for a cluster run: a folder, a list of paths, or a URI (no Ray, no torch).

* a local folder (or ``file://`` URI of one): :func:`fewshot_gui.data.folder.scan`, exactly as the
  local engine scans it (sorted, hidden names counted, paths not used listed with their reason);
* a list file: ``.txt``/``.lst`` (one path per line; blank lines and ``#`` comments skipped),
  ``.csv`` (a ``path`` column) or ``.parquet`` (a ``path`` column); relative paths are taken
  relative to the list's folder; entries are not checked here (a missing file gets its reason when
  a worker decodes it);
* a URI of another file system pyarrow supports (``s3://bucket/photos/``, ``gs://…``, ``hdfs://…``):
  a folder is listed recursively, a list file is read as above. Workers copy each remote file to a
  local temporary file and decode it with the local decoder (:func:`local_copy`).

Paths appear once each, in the order found.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure

LIST_SUFFIXES = (".txt", ".lst", ".csv", ".parquet")


@dataclass
class ImageSource:
    """The images of a run: ``paths`` (absolute local paths or URIs), paths found but not used,
    hidden names passed over, and what ``IMAGES`` was (``folder``, ``list`` or ``uri``)."""

    paths: list[str]
    skipped: list[FileFailure] = field(default_factory=list)
    hidden: int = 0
    kind: str = "folder"


def is_remote(path: str) -> bool:
    """True for a URI of a file system other than the local one (``s3://…``; not ``file://``)."""
    scheme = urlparse(path).scheme
    return len(scheme) > 1 and scheme != "file"  # a one-letter scheme is a Windows drive


def local_path(path: str) -> str:
    """``file:///a/b`` → ``/a/b``; other paths unchanged."""
    parsed = urlparse(path)
    return unquote(parsed.path) if parsed.scheme == "file" else path


def open_source(images: str) -> ImageSource:
    """The images named by ``images``; raises UsageError (one line) when it names none."""
    if is_remote(images):
        return _remote_source(images)
    path = os.path.abspath(os.path.expanduser(local_path(images)))
    if os.path.isdir(path) or not os.path.exists(path):  # a missing folder: scan's own message
        from fewshot_gui.data.folder import scan

        found = scan(path)
        return ImageSource([r.path for r in found.records], found.skipped, found.hidden, "folder")
    if Path(path).suffix.lower() not in LIST_SUFFIXES:
        raise UsageError(
            f"{images} is neither a folder nor a list of paths ({', '.join(LIST_SUFFIXES)})"
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise UsageError(f"cannot read the list {path}: {error.strerror or error}") from None
    entries = _list_entries(data, path)
    return ImageSource(_unique(_absolute(p, os.path.dirname(path)) for p in entries), kind="list")


def _list_entries(data: bytes, name: str) -> list[str]:
    """The paths in a list file's bytes (``name`` gives the format by its suffix)."""
    suffix = Path(urlparse(name).path).suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as error:
            raise UsageError(f"{name} is not a readable Parquet file ({error})") from None
        if "path" not in table.column_names:
            raise UsageError(f"{name} has no 'path' column")
        return [str(p) for p in table.column("path").to_pylist() if p]
    text = data.decode("utf-8", errors="surrogateescape")
    if suffix == ".csv":
        rows = csv.reader(io.StringIO(text, newline=""))
        header = next(rows, [])
        if "path" not in header:
            raise UsageError(f"{name} has no 'path' column in its first line")
        column = header.index("path")
        return [r[column] for r in rows if len(r) > column and r[column]]
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _absolute(entry: str, base: str) -> str:
    if is_remote(entry):
        return entry
    entry = os.path.expanduser(local_path(entry))
    return entry if os.path.isabs(entry) else os.path.normpath(os.path.join(base, entry))


def _unique(paths: Iterator[str] | list[str]) -> list[str]:
    return list(dict.fromkeys(paths))


def _remote_source(uri: str) -> ImageSource:
    """A remote folder (listed recursively) or list file, through pyarrow's file systems."""
    import pyarrow.fs as pafs

    from fewshot_gui.data.folder import _name_problem, is_image_name

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
    except Exception as error:
        raise UsageError(f"cannot open {uri}: {error}") from None
    prefix = uri[: len(uri) - len(uri.split("://", 1)[1])]  # "s3://"
    if info.type == pafs.FileType.File:
        with fs.open_input_file(root) as handle:
            entries = _list_entries(handle.read(), uri)
        base = prefix + root.rsplit("/", 1)[0]
        absolute = (e if is_remote(e) or e.startswith("/") else f"{base}/{e}" for e in entries)
        return ImageSource(_unique(absolute), kind="list")
    if info.type != pafs.FileType.Directory:
        raise UsageError(f"{uri}: no such folder or list file")
    found = ImageSource([], kind="uri")
    listing = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    for item in sorted(listing, key=lambda i: i.path):
        relative = item.path[len(root) :].lstrip("/")
        if any(part.startswith(".") for part in relative.split("/")):
            found.hidden += 1
        elif item.type == pafs.FileType.File:
            if is_image_name(item.base_name):
                found.paths.append(prefix + item.path)
            else:
                found.skipped.append(FileFailure(prefix + item.path, _name_problem(item.base_name)))
    return found


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local path holding ``path``'s bytes: the path itself when local, else a temporary copy
    (same suffix, removed afterwards). A remote read error raises ``FileNotFoundError`` or
    ``OSError``, which the decoder turns into a plain reason."""
    if not is_remote(path):
        yield local_path(path)
        return
    import pyarrow.fs as pafs

    fs, remote = pafs.FileSystem.from_uri(path)
    suffix = Path(remote).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="fewshot-remote-") as tmp:
        with fs.open_input_stream(remote) as source:
            while chunk := source.read(1 << 20):
                tmp.write(chunk)
        tmp.flush()
        yield tmp.name
