"""A large preview of one image, decoded off the GUI thread. Space, Escape or a click closes it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QKeyEvent, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from fewshot_gui.qt.thumbnails import ThumbnailLoader

PREVIEW_SIZE = 900


class PreviewDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview")
        self.loader = ThumbnailLoader(
            size=PREVIEW_SIZE, capacity=8, cache_dir=None, threads=1, parent=self
        )
        self.loader.ready.connect(self._ready)
        self.loader.failed.connect(lambda p, why: self._caption(p, f"cannot show: {why}"))
        self.image = QLabel(self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(320, 240)
        self.caption = QLabel(self)
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        self.path = ""

    def show_path(self, path: str, caption: str = "") -> None:
        self.path = path
        self._caption(path, caption)
        image = self.loader.request(path)
        if image is not None:
            self._ready(path, image)
        else:
            self.image.setText("loading…")
        self.show()
        self.raise_()

    def _caption(self, path: str, text: str) -> None:
        if path == self.path:
            self.caption.setText(f"{path}\n{text}" if text else path)

    def _ready(self, path: str, image: QImage) -> None:
        if path == self.path:
            self.image.setPixmap(QPixmap.fromImage(image))
            self.resize(max(360, image.width() + 40), max(300, image.height() + 80))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Escape):
            self.close()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:
        self.close()
