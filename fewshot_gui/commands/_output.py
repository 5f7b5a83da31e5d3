"""An output file that never clobbers: checked before a command does any work.

:func:`check_output_file` refuses (``UsageError``, one plain line) an ``--out`` that is a folder or
not a regular file, or an existing file that is not a labels file fewshot-gui wrote (recognised by
its header) — so no input image, no file inside the input folders and no other file of the user's
is ever replaced. It then proves the folder writable by creating and removing a temporary file
there (named like :mod:`fewshot_gui.core.atomic`'s, so a killed probe is cleaned by the next write).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from fewshot_gui.core.atomic import TEMP_SUFFIX, temp_prefix
from fewshot_gui.core.errors import UsageError

_CSV_HEADER = re.compile(r"\A\ufeff?path,label(,|\r?\n|\Z)")
_JSON_START = re.compile(r'\A\s*\[\s*(\]|\{\s*"path"\s*:)')


def is_labels_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts like a labels CSV (``path,label,…``) or JSON that we write."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(_CSV_HEADER.match(head) or _JSON_START.match(head))


def _os_reason(error: OSError) -> str:
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _refuse_existing(target: Path, real: str, inputs: Mapping[str, str | os.PathLike[str]]) -> None:
    """UsageError unless the existing ``target`` is a labels file we wrote."""
    try:
        mode = os.stat(real).st_mode
    except OSError as error:
        raise UsageError(f"--out {target}: cannot read it ({_os_reason(error)})") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"--out {target} is a folder; give a file name, e.g. {target}/labels.csv")
    if stat.S_ISREG(mode) and is_labels_file(real):
        return
    where = next(
        (
            name
            for name, folder in inputs.items()
            if _inside(real, os.path.realpath(os.path.expanduser(os.fspath(folder))))
        ),
        None,
    )
    what = f"a file inside the {where}" if where else "an existing file"
    raise UsageError(
        f"--out {target} is {what} and not a labels file written by fewshot-gui; "
        "refusing to overwrite it (choose another file name)"
    )


def _probe_folder(folder: Path, target: Path) -> None:
    """UsageError unless a file can be created (and removed) in ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = _os_reason(error)
        if isinstance(error, (FileExistsError, NotADirectoryError)):
            reason = "a file is in the way where a folder should be"
        raise UsageError(f"cannot create the folder for --out {folder}: {reason}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=folder)
    except OSError as error:
        raise UsageError(f"cannot write --out in {folder}: {_os_reason(error)}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_output_file(
    out: str | os.PathLike[str], inputs: Mapping[str, str | os.PathLike[str]]
) -> Path:
    """The absolute ``out`` path, once it is safe to write; raises UsageError otherwise.

    ``inputs`` names the input folders (``{"images folder": path, …}``) for the message.
    """
    target = Path(out).expanduser().absolute()
    real = os.path.realpath(target)
    if os.path.lexists(target) or os.path.exists(real):
        _refuse_existing(target, real, inputs)
    _probe_folder(target.parent, target)
    return target
