"""The class panel: one card per class (colour, key, name, example thumbnails) that accepts drops.

Views emit intent signals only; the composition root turns them into undoable commands.
"""

from __future__ import annotations

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
    QColorDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.data.folder import is_image_name
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.ui.image_grid import paths_from_mime
from fewshot_gui.ui.state import LabelState
from fewshot_gui.workers.thumbnails import ThumbnailLoader

ICON = 56


class ClassCard(QFrame):
    """One class. Drop or paste image files onto it to add them as examples."""

    dropped = Signal(str, list)  # class name, paths
    removeRequested = Signal(str, list)
    renameRequested = Signal(str)
    recolourRequested = Signal(str)
    deleteRequested = Signal(str)

    def __init__(
        self,
        info: ClassInfo,
        key: int,
        thumbnails: ThumbnailLoader | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = info.name
        self.thumbnails = thumbnails
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("classCard")
        swatch = QLabel(self)
        swatch.setFixedSize(14, 14)
        swatch.setStyleSheet(f"background:{info.color}; border-radius:7px;")
        key_label = QLabel(f"<b>{key}</b>" if key <= 9 else "", self)
        key_label.setToolTip(f"press {key} in the grid to label images as {info.name}")
        title = QLabel(f"<b>{info.name}</b> · {len(info.examples)} example(s)", self)
        title.setTextFormat(Qt.TextFormat.RichText)
        menu_button = QToolButton(self)
        menu_button.setText("⋯")
        menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(menu_button)
        menu.addAction("Rename…", lambda: self.renameRequested.emit(self.name))
        menu.addAction("Colour…", lambda: self.recolourRequested.emit(self.name))
        menu.addAction("Paste images", self.paste)
        menu.addSeparator()
        menu.addAction("Delete class", lambda: self.deleteRequested.emit(self.name))
        menu_button.setMenu(menu)
        head = QHBoxLayout()
        head.addWidget(key_label)
        head.addWidget(swatch)
        head.addWidget(title, 1)
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
        layout.addWidget(self.strip)

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


class ClassPanel(QWidget):
    """All class cards plus an "Add class" button. Intents only; rebuilt when the state changes."""

    addRequested = Signal()
    examplesDropped = Signal(str, list)
    exampleRemoveRequested = Signal(str, list)
    renameRequested = Signal(str, str)
    recolourRequested = Signal(str, str)
    deleteRequested = Signal(str)

    def __init__(
        self, state: LabelState, thumbnails: ThumbnailLoader | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.thumbnails = thumbnails
        self.cards: list[ClassCard] = []
        add = QPushButton("+ Add class", self)
        add.clicked.connect(self.addRequested)
        self.add_button = add
        self.body = QVBoxLayout()
        self.body.setSpacing(6)
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.setContentsMargins(0, 0, 0, 0)
        inner_layout.addLayout(self.body)
        inner_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("<b>Classes</b> — drop example images on a class", self)
        layout.addWidget(title)
        layout.addWidget(add)
        layout.addWidget(scroll, 1)
        self._shown: dict[ClassCard, tuple] = {}  # card → what it shows
        state.classesChanged.connect(self.rebuild)
        state.examplesChanged.connect(lambda _name: self.rebuild())
        self.rebuild()

    def rebuild(self) -> None:
        """Show one card per class, in order; cards whose class did not change are kept (building
        one takes a while, and examples may be dropped while a folder is being labeled)."""
        spare = {shown: card for card, shown in self._shown.items()}
        cards: list[ClassCard] = []
        for k, info in enumerate(self.state.classes):
            shown = (info.name, info.color, k + 1, tuple(info.examples))
            card = spare.pop(shown, None) or self._make_card(info, k + 1)
            self._shown[card] = shown
            cards.append(card)
        for card in spare.values():
            del self._shown[card]
            if self.thumbnails is not None:
                self.thumbnails.ready.disconnect(card._thumbnail_ready)
            card.setParent(None)
            card.deleteLater()
        for card in self.cards:
            self.body.removeWidget(card)
        for card in cards:
            self.body.addWidget(card)
        self.cards = cards

    def _make_card(self, info: ClassInfo, key: int) -> ClassCard:
        card = ClassCard(info, key, self.thumbnails, self)
        card.dropped.connect(self.examplesDropped)
        card.removeRequested.connect(self.exampleRemoveRequested)
        card.renameRequested.connect(self._ask_rename)
        card.recolourRequested.connect(self._ask_colour)
        card.deleteRequested.connect(self.deleteRequested)
        return card

    def card(self, name: str) -> ClassCard | None:
        return next((c for c in self.cards if c.name == name), None)

    def _ask_rename(self, name: str) -> None:
        new, ok = QInputDialog.getText(self, "Rename class", "New name:", text=name)
        new = new.strip()
        if ok and new and new != name:
            self.renameRequested.emit(name, new)

    def _ask_colour(self, name: str) -> None:
        color = QColorDialog.getColor(self.state.color(name), self, f"Colour of {name}")
        if color.isValid():
            self.recolourRequested.emit(name, color.name())
