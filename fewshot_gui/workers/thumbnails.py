"""Thumbnails decoded off the GUI thread, with a memory LRU cache and an on-disk cache.

``ThumbnailLoader.request(path)`` returns a cached ``QImage`` at once or ``None`` and schedules the
decode on a small thread pool; ``ready(path, QImage)`` is emitted in the GUI thread when done. The
disk cache (user cache dir, ``thumbnails/``) is keyed by path + file size + mtime + thumbnail size,
so an edited file gets a fresh thumbnail. QImage (not QPixmap) is safe to build in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from fewshot_gui.core.paths import user_cache_dir
from fewshot_gui.workers.warmup import import_quietly


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
        try:
            folder = cache_dir / key[:2]
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{key}.{os.getpid()}.tmp"
            pil.convert("RGB").save(tmp, "JPEG", quality=85)
            os.replace(tmp, folder / key)
        except OSError:
            pass  # a read-only cache is not an error
    return image


class _Signals(QObject):
    done = Signal(str, int, QImage)
    failed = Signal(str, int, str)


class _Job(QRunnable):
    def __init__(self, path: str, size: int, cache_dir: Path | None, signals: _Signals) -> None:
        super().__init__()
        self.path, self.size, self.cache_dir, self.signals = path, size, cache_dir, signals
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            image = decode_thumbnail(self.path, self.size, self.cache_dir)
        except Exception as error:  # DecodeError or anything odd: report, never crash
            with contextlib.suppress(RuntimeError):  # the loader may be gone by now
                self.signals.failed.emit(self.path, self.size, str(error) or type(error).__name__)
            return
        with contextlib.suppress(RuntimeError):
            self.signals.done.emit(self.path, self.size, image)


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
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads or max(1, min(4, (os.cpu_count() or 2) - 1)))
        self._signals = _Signals()
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)

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
        self._pool.start(_Job(path, self.size, self.cache_dir, self._signals))
        return None

    def clear_pending(self) -> None:
        """Drop queued (not started) decodes, e.g. after the user scrolled far away."""
        self._pool.clear()
        self._pending.clear()

    def wait(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    def _on_done(self, path: str, size: int, image: QImage) -> None:
        self._pending.discard(path)
        if size != self.size:
            return
        self._memory[path] = image
        self._memory.move_to_end(path)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)
        self.ready.emit(path, image)

    def _on_failed(self, path: str, size: int, reason: str) -> None:
        self._pending.discard(path)
        self._bad[path] = reason
        self.failed.emit(path, reason)
