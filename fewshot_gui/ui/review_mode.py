"""Review one image at a time (the Prodigy habit), on the same review model as the grid.

A large image, its label and confidence, one button per class (keys 1–9), Accept (Enter), Skip
(→), Back (←) and Undo (Ctrl+Z or Backspace). It walks the grid's order, which stays frozen while
the user reviews, and goes to the next image the user has not labeled after each label. Emits
intents only; the composition root turns them into undoable commands.
"""

from __future__ import annotations

import os
from typing import Protocol

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtGui import QImage, QKeyEvent, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.review import ReviewModel
from fewshot_gui.ui.state import subscribe

IMAGE_SIDE = 560


class ImageSource(Protocol):
    """Decodes images off the GUI thread: ``request`` answers at once or later via ``ready``."""

    ready: SignalInstance

    def request(self, path: str) -> QImage | None: ...


class ReviewMode(QDialog):
    """One image at a time: label, accept, skip, go back, undo."""

    labelRequested = Signal(list, object)  # [path], label
    undoRequested = Signal()
    currentChanged = Signal(int)  # base index of the image shown

    def __init__(
        self, review: ReviewModel, images: ImageSource, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Review one by one")
        self.review = review
        self.images = images
        self.row = -1
        self.history: list[int] = []  # rows labeled here, for Undo
        self.position = QLabel(self)
        self.image = QLabel(self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(IMAGE_SIDE, IMAGE_SIDE * 3 // 4)
        self.image.setStyleSheet("background:#1e1e1e; color:#888;")
        self.caption = QLabel(self)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.class_bar = QHBoxLayout()
        actions = QHBoxLayout()
        for text, slot, tip in (
            ("← Back", self.back, "Left arrow"),
            ("Skip →", self.skip, "Right arrow"),
            ("✓ Accept", self.accept_prediction, "Enter: keep the predicted label"),
            ("Undo", self.undo, "Ctrl+Z or Backspace"),
        ):
            button = QPushButton(text, self)
            button.setToolTip(tip)
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.position)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        layout.addLayout(self.class_bar)
        layout.addLayout(actions)
        images.ready.connect(self._image_ready)
        subscribe(review.classes_changed, self, self._build_class_buttons)
        subscribe(review.review_changed, self, self._refresh_if_shown)
        subscribe(review.order_changed, self, self._order_changed)
        self._build_class_buttons()

    # ------------------------------------------------------------------ what is shown
    def _build_class_buttons(self) -> None:
        while self.class_bar.count():
            widget = self.class_bar.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for k, info in enumerate(self.review.classes):
            key = f"{k + 1} " if k < 9 else ""
            button = QPushButton(f"{key}{info.name}", self)
            button.setAutoDefault(False)
            button.setStyleSheet(f"border-left: 6px solid {info.color}; padding: 4px 8px;")
            button.clicked.connect(lambda _=False, n=info.name: self.label(n))
            self.class_bar.addWidget(button)

    def start(self, row: int = -1) -> None:
        """Show the image at view ``row`` (or the first one not reviewed) and keep the order."""
        self.review.freeze()
        self.history = []
        if not 0 <= row < len(self.review.order):
            row = self.review.next_unreviewed(-1)
        self.show_row(row)
        self.show()
        self.raise_()
        self.activateWindow()

    def base(self) -> int:
        return int(self.review.order[self.row]) if 0 <= self.row < len(self.review.order) else -1

    def show_row(self, row: int) -> None:
        self.row = row
        self.refresh()
        base = self.base()
        if base >= 0:
            self.currentChanged.emit(base)
            path = self.review.paths[base]
            image = self.images.request(path)
            if image is not None:
                self._image_ready(path, image)
            else:
                self.image.setText("loading…")
            nxt = self.review.next_unreviewed(row)
            if nxt >= 0:  # decode the next one while the user looks at this one
                self.images.request(self.review.paths[int(self.review.order[nxt])])

    def refresh(self) -> None:
        review, base = self.review, self.base()
        counts = review.counts()
        changed = f" · last action changed {counts.changed:,}" if counts.changed else ""
        total = len(review.order)
        where = f"{self.row + 1:,} of {total:,}" if base >= 0 else f"{total:,} images"
        self.position.setText(
            f"{where} · reviewed {counts.reviewed:,} · {counts.remaining:,} to go{changed}"
        )
        if base < 0:
            self.image.setPixmap(QPixmap())
            self.image.setText("Nothing left to review here." if total else "No images.")
            self.caption.setText("")
            return
        path = review.paths[base]
        user = review.user_label(path)
        what = review.describe(base)
        mark = "✓ " if user is not None else ""
        color = review.color_of(review.label(base))
        self.caption.setText(
            f"{os.path.basename(path)}<br><b style='color:{color}'>{mark}{what}</b>"
        )

    def _refresh_if_shown(self) -> None:
        if self.isVisible():
            self.refresh()

    def _order_changed(self, first: int, _last: int) -> None:
        if first < 0 and self.isVisible():  # re-sorted: stay on the same image
            base = self.base()
            self.row = self.review.row_of(base) if base >= 0 else -1
            self.refresh()

    def _image_ready(self, path: str, image: QImage) -> None:
        base = self.base()
        if base >= 0 and self.review.paths[base] == path:
            pixmap = QPixmap.fromImage(image)
            size = self.image.size()
            self.image.setPixmap(
                pixmap.scaled(
                    size,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    # ------------------------------------------------------------------ actions
    def label(self, name: str) -> None:
        base = self.base()
        if base < 0:
            return
        self.history.append(self.row)
        self.labelRequested.emit([self.review.paths[base]], name)
        self.show_row(self.review.next_unreviewed(self.row))

    def accept_prediction(self) -> None:
        """Keep the predicted label (the user's own label, if any, stays) and move on."""
        base = self.base()
        if base < 0:
            return
        path, predicted = self.review.paths[base], self.review.predicted(base)
        if self.review.user_label(path) is None and predicted in self.review.names():
            self.label(predicted)
        else:
            self.skip()

    def skip(self) -> None:
        if self.row + 1 < len(self.review.order):
            self.show_row(self.row + 1)

    def back(self) -> None:
        if self.row > 0:
            self.show_row(self.row - 1)

    def undo(self) -> None:
        """Undo the last action (of the app's undo stack) and show its image again."""
        self.undoRequested.emit()
        if self.history:
            self.show_row(self.history.pop())
        else:
            self.refresh()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        plain = not mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
        names = self.review.names()
        if plain and Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            k = int(key) - int(Qt.Key.Key_1)
            if k < len(names):
                self.label(names[k])
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept_prediction()
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_S) and plain:
            self.skip()
        elif key == Qt.Key.Key_Left:
            self.back()
        elif key == Qt.Key.Key_Backspace or event.matches(QKeySequence.StandardKey.Undo):
            self.undo()
        else:
            super().keyPressEvent(event)
