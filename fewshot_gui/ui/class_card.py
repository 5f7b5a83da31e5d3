"""One class in the class panel: its colour, key, name (renamed in place) and example thumbnails;
a drop target for example images. Emits intents only (drop, remove, rename, recolour, delete)."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QImage,
    QKeySequence,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.core.names import class_name_problem
from fewshot_gui.data.folder import IMAGE_EXTENSIONS, is_image_name
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.qt.thumbnails import ThumbnailLoader
from fewshot_gui.ui.dropped_paths import paths_from_mime

ICON = 56


def image_file_filter() -> str:
    """A file-dialog filter for every image extension the scan accepts (either letter case)."""
    patterns = sorted(
        {f"*{e}" for e in IMAGE_EXTENSIONS} | {f"*{e.upper()}" for e in IMAGE_EXTENSIONS}
    )
    return f"Images ({' '.join(patterns)});;All files (*)"


class NameLabel(QLabel):
    """The class name; a double click starts renaming."""

    doubleClicked = Signal()

    def mouseDoubleClickEvent(self, event) -> None:
        self.doubleClicked.emit()


class NameEdit(QLineEdit):
    """Inline editor of a class name: Enter commits, Escape cancels."""

    cancelled = Signal()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            return
        super().keyPressEvent(event)


class ClassCard(QFrame):
    """One class. Drop or paste image files onto it to add them as examples."""

    dropped = Signal(str, list)  # class name, paths
    removeRequested = Signal(str, list)
    renameRequested = Signal(str, str)  # old name, new name (already checked)
    recolourRequested = Signal(str)
    deleteRequested = Signal(str)

    def __init__(
        self,
        info: ClassInfo,
        key: int,
        thumbnails: ThumbnailLoader | None,
        parent: QWidget | None = None,
        check_name: Callable[[str, str], str | None] = lambda _old, new: class_name_problem(new),
    ) -> None:
        super().__init__(parent)
        self.name = info.name
        self.thumbnails = thumbnails
        self.check_name = check_name
        self.last_folder = ""
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("classCard")
        swatch = QLabel(self)
        swatch.setFixedSize(14, 14)
        swatch.setStyleSheet(f"background:{info.color}; border-radius:7px;")
        key_label = QLabel(f"<b>{key}</b>" if key <= 9 else "", self)
        key_label.setToolTip(f"press {key} in the grid to label images as {info.name}")
        title = NameLabel(self)
        title.setTextFormat(Qt.TextFormat.PlainText)
        title.setText(f"{info.name} ({len(info.examples)})")
        title.setStyleSheet("font-weight:bold;")
        title.setToolTip(
            f"{info.name}: {len(info.examples)} example image(s) — double-click to rename"
        )
        # the name gives way (clipped) before the buttons beside it leave the panel
        title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        title.setMinimumWidth(40)
        title.doubleClicked.connect(self.start_rename)
        self.title = title
        self.name_edit = NameEdit(self)
        self.name_edit.setPlaceholderText("class name")
        self.name_edit.hide()
        self._returned = False  # Return emits returnPressed, then editingFinished
        self.name_edit.returnPressed.connect(self._return_pressed)
        self.name_edit.editingFinished.connect(self._editing_finished)
        self.name_edit.cancelled.connect(self._end_rename)
        self.name_problem = QLabel(self)
        self.name_problem.setWordWrap(True)
        self.name_problem.setStyleSheet("color:#d04040;")
        self.name_problem.hide()
        add_images = QToolButton(self)
        add_images.setText("+ Images…")
        add_images.setToolTip(f"choose example images of {info.name} from a folder")
        add_images.clicked.connect(self.ask_images)
        self.add_images_button = add_images
        menu_button = QToolButton(self)
        menu_button.setText("⋯")
        menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(menu_button)
        menu.addAction("Rename", self.start_rename)
        menu.addAction("Add images…", self.ask_images)
        menu.addAction("Colour…", lambda: self.recolourRequested.emit(self.name))
        menu.addAction("Paste images", self.paste)
        menu.addSeparator()
        menu.addAction("Delete class", lambda: self.deleteRequested.emit(self.name))
        menu_button.setMenu(menu)
        head = QHBoxLayout()
        head.addWidget(key_label)
        head.addWidget(swatch)
        head.addWidget(title, 1)
        head.addWidget(self.name_edit, 1)
        head.addWidget(add_images)
        head.addWidget(menu_button)
        self.strip = QListWidget(self)
        self.strip.setViewMode(QListWidget.ViewMode.IconMode)
        self.strip.setIconSize(QSize(ICON, ICON))
        self.strip.setFlow(QListWidget.Flow.LeftToRight)
        self.strip.setWrapping(True)
        self.strip.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.strip.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.strip.setAcceptDrops(False)
        self.strip.setFixedHeight(ICON + 16 if info.examples else 34)
        self.strip.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.strip.customContextMenuRequested.connect(self._strip_menu)
        self.strip.setStyleSheet("QListWidget{border:1px dashed #888;}")
        if not info.examples:
            hint = QListWidgetItem("drop or paste example images here")
            hint.setFlags(Qt.ItemFlag.NoItemFlags)
            self.strip.addItem(hint)
        for path in info.examples:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            item.setSizeHint(QSize(ICON + 4, ICON + 4))
            self.strip.addItem(item)
            self._set_icon(item, thumbnails.request(path) if thumbnails else None)
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)
        QShortcut(
            QKeySequence.StandardKey.Delete,
            self.strip,
            self._remove_selected,
            context=Qt.ShortcutContext.WidgetShortcut,
        )
        QShortcut(
            QKeySequence.StandardKey.Paste,
            self,
            self.paste,
            context=Qt.ShortcutContext.WidgetWithChildrenShortcut,
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(head)
        layout.addWidget(self.name_problem)
        layout.addWidget(self.strip)

    # ------------------------------------------------------------------ naming
    def start_rename(self) -> None:
        """Edit the name in place (Enter commits, Escape keeps the old name)."""
        self.name_edit.setText(self.name)
        self.title.hide()
        self.name_edit.show()
        self.name_edit.setFocus()
        self.name_edit.selectAll()

    def editing(self) -> bool:
        return not self.name_edit.isHidden()

    def _return_pressed(self) -> None:
        self._returned = True
        self._commit_name(keep_editing=True)

    def _editing_finished(self) -> None:
        if self._returned:
            self._returned = False
            return
        self._commit_name(keep_editing=False)  # focus went elsewhere

    def _commit_name(self, keep_editing: bool) -> None:
        if self.name_edit.isHidden():
            return
        new = self.name_edit.text().strip()
        if new == self.name:
            self._end_rename()
            return
        problem = self.check_name(self.name, new)
        if problem:
            self.name_problem.setText(problem)
            self.name_problem.show()
            if keep_editing:
                self.name_edit.setFocus()
                self.name_edit.selectAll()
            else:  # focus went elsewhere: keep the old name, leave the reason shown
                self.name_edit.hide()
                self.title.show()
            return
        self._end_rename()
        self.renameRequested.emit(self.name, new)

    def _end_rename(self) -> None:
        self.name_problem.hide()
        self.name_edit.hide()
        self.title.show()

    # ------------------------------------------------------------------ examples
    def ask_images(self) -> None:
        """Choose example images with a file dialog."""
        paths, _ = QFileDialog.getOpenFileNames(
            self, f"Example images of {self.name}", self.last_folder, image_file_filter()
        )
        paths = [p for p in paths if is_image_name(os.path.basename(p))]
        if paths:
            self.last_folder = os.path.dirname(paths[0])
            self.dropped.emit(self.name, paths)

    def _set_icon(self, item: QListWidgetItem, image: QImage | None) -> None:
        if image is not None and not image.isNull():
            item.setIcon(QIcon(QPixmap.fromImage(image)))
        else:
            blank = QPixmap(ICON, ICON)
            blank.fill(QColor("#555"))
            item.setIcon(QIcon(blank))

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        for k in range(self.strip.count()):
            item = self.strip.item(k)
            if item.data(Qt.ItemDataRole.UserRole) == path:
                self._set_icon(item, image)

    def _selected_paths(self) -> list[str]:
        return [
            i.data(Qt.ItemDataRole.UserRole)
            for i in self.strip.selectedItems()
            if i.data(Qt.ItemDataRole.UserRole)
        ]

    def _remove_selected(self) -> None:
        paths = self._selected_paths()
        if paths:
            self.removeRequested.emit(self.name, paths)

    def _strip_menu(self, pos) -> None:
        if not self._selected_paths():
            return
        menu = QMenu(self)
        menu.addAction("Remove example(s)", self._remove_selected)
        menu.exec(self.strip.viewport().mapToGlobal(pos))

    @staticmethod
    def _image_paths(mime) -> list[str]:
        return paths_from_mime(mime, lambda p: is_image_name(p.rsplit("/", 1)[-1]))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._image_paths(event.mimeData()):
            event.acceptProposedAction()
            self.setStyleSheet("#classCard{border:2px solid #4caf50;}")
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self.setStyleSheet("")
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self.setStyleSheet("")
        paths = self._image_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(self.name, paths)
        else:
            event.ignore()

    def paste(self) -> None:
        paths = self._image_paths(QApplication.clipboard().mimeData())
        if paths:
            self.dropped.emit(self.name, paths)
