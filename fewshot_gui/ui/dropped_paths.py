"""The local files named by a drop or a paste, as absolute paths."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QMimeData, QUrl


def paths_from_mime(mime: QMimeData, accept: Callable[[str], bool] | None = None) -> list[str]:
    """Local file paths in a drop or paste (urls, or plain text with one path per line)."""
    paths: list[str] = []
    if mime.hasUrls():
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    elif mime.hasText():
        for line in mime.text().splitlines():
            line = line.strip()
            if line.startswith("file://"):
                line = QUrl(line).toLocalFile()
            if line:
                paths.append(line)
    paths = [os.path.abspath(p) for p in paths if p]
    return [p for p in paths if accept is None or accept(p)]
