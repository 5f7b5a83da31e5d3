"""Thumbnails decoded off the GUI thread, with a memory LRU cache and an on-disk cache.

``ThumbnailLoader.request(path)`` returns a cached ``QImage`` at once or ``None`` and schedules the
decode on a small thread pool; ``ready(path, QImage)`` is emitted in the GUI thread when done. The
disk cache (user cache dir, ``thumbnails/``) is keyed by path + file size + mtime + thumbnail size,
so an edited file gets a fresh thumbnail. QImage (not QPixmap) is safe to build in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from fewshot_gui.core.atomic import atomic_write_bytes
from fewshot_gui.core.paths import user_cache_dir
from fewshot_gui.qt.pool import PoolRunner
from fewshot_gui.qt.warmup import import_quietly


def default_cache_dir() -> Path:
    return user_cache_dir("thumbnails")


def cache_key(path: str, size: int) -> str | None:
    """Disk-cache file name for ``path`` at ``size``; None when the file cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    ident = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{size}"
    return hashlib.sha1(ident.encode("utf-8", "surrogatepass")).hexdigest() + ".jpg"


def _to_qimage(pil_image) -> QImage:
    rgb = pil_image.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    image = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: ``data`` goes away


def decode_thumbnail(path: str, size: int, cache_dir: Path | None) -> QImage:
    """Read from the disk cache or decode (``data.decode.load_thumbnail``) and store; may raise."""
    key = cache_key(path, size) if cache_dir is not None else None
    if key is not None and cache_dir is not None:
        cached = cache_dir / key[:2] / key
        if cached.exists():
            image = QImage(str(cached))
            if not image.isNull():
                return image.convertToFormat(QImage.Format.Format_RGB32)
    load_thumbnail = import_quietly("fewshot_gui.data.decode").load_thumbnail
    pil = load_thumbnail(path, size)
    image = _to_qimage(pil).convertToFormat(QImage.Format.Format_RGB32)
    if key is not None and cache_dir is not None:
        encoded = io.BytesIO()
        pil.convert("RGB").save(encoded, "JPEG", quality=85)
        with contextlib.suppress(OSError):  # a read-only cache is not an error
            atomic_write_bytes(cache_dir / key[:2] / key, encoded.getvalue())
    return image


class ThumbnailLoader(QObject):
    """Asynchronous thumbnails with an LRU of ``capacity`` images per loader."""

    ready = Signal(str, QImage)
    failed = Signal(str, str)

    def __init__(
        self,
        size: int = 128,
        capacity: int = 2000,
        cache_dir: Path | str | None = "auto",
        threads: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self.cache_dir = (
            default_cache_dir() if cache_dir == "auto" else (Path(cache_dir) if cache_dir else None)
        )
        self._memory: OrderedDict[str, QImage] = OrderedDict()
        self._pending: set[str] = set()
        self._bad: dict[str, str] = {}
        self._runner = PoolRunner(threads or max(1, min(4, (os.cpu_count() or 2) - 1)), self)
        self._runner.done.connect(self._on_done)
        self._runner.failed.connect(self._on_failed)

    def get(self, path: str) -> QImage | None:
        image = self._memory.get(path)
        if image is not None:
            self._memory.move_to_end(path)
        return image

    def error(self, path: str) -> str | None:
        return self._bad.get(path)

    def request(self, path: str) -> QImage | None:
        """The cached thumbnail, or None after scheduling its decode (at most once at a time)."""
        image = self.get(path)
        if image is not None or path in self._pending or path in self._bad:
            return image
        self._pending.add(path)
        size, cache_dir = self.size, self.cache_dir
        self._runner.submit(lambda: decode_thumbnail(path, size, cache_dir), (path, size))
        return None

    def clear_pending(self) -> None:
        """Drop queued (not started) decodes, e.g. after the user scrolled far away."""
        self._runner.clear()
        self._pending.clear()

    def wait(self, msecs: int = 5000) -> bool:
        return self._runner.wait(msecs)

    def _on_done(self, job: tuple[str, int], image: QImage) -> None:
        path, size = job
        self._pending.discard(path)
        if size != self.size:
            return
        self._memory[path] = image
        self._memory.move_to_end(path)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)
        self.ready.emit(path, image)

    def _on_failed(self, job: tuple[str, int], reason: str) -> None:
        path, _size = job
        self._pending.discard(path)
        self._bad[path] = reason
        self.failed.emit(path, reason)
