"""The card shown beside a hovered point: its thumbnail, and under it name, label, confidence."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

HOVER_THUMB = 128
SMOOTH = Qt.TransformationMode.SmoothTransformation


class HoverCard(QFrame):
    """The hovered image: its thumbnail, and under it (never over it) name, label, confidence."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("hoverCard")
        self.setStyleSheet(
            "#hoverCard { background: rgba(0,0,0,215); border-radius: 4px; }"
            "QLabel { color: white; background: transparent; }"
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.image = QLabel(self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel(self)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.image)
        layout.addWidget(self.text)
        self.hide()

    def show_image(self, image: QImage | None, text: str) -> None:
        if image is not None and not image.isNull():
            side = HOVER_THUMB
            self.image.setPixmap(
                QPixmap.fromImage(image).scaled(
                    side, side, Qt.AspectRatioMode.KeepAspectRatio, SMOOTH
                )
            )
            self.image.show()
        else:
            self.image.hide()
        self.text.setText(text)
        self.adjustSize()
