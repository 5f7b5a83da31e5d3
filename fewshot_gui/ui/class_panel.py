"""The class panel: one card per class (``class_card.py``: colour, key, name, example thumbnails;
a drop target) and an "Add class" button.

Views emit intent signals only; the composition root turns them into undoable commands.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QColorDialog,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from fewshot_gui.core.names import class_name_problem
from fewshot_gui.data.project import ClassInfo
from fewshot_gui.qt.thumbnails import ThumbnailLoader
from fewshot_gui.ui.class_card import ClassCard
from fewshot_gui.ui.state import LabelState


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
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
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
        card = ClassCard(info, key, self.thumbnails, self, self.name_problem)
        card.dropped.connect(self.examplesDropped)
        card.removeRequested.connect(self.exampleRemoveRequested)
        card.renameRequested.connect(self.renameRequested)
        card.recolourRequested.connect(self._ask_colour)
        card.deleteRequested.connect(self.deleteRequested)
        return card

    def card(self, name: str) -> ClassCard | None:
        return next((c for c in self.cards if c.name == name), None)

    def name_problem(self, old: str, new: str) -> str | None:
        """Why ``old`` cannot be renamed to ``new`` (None: it can)."""
        problem = class_name_problem(new)
        if problem is None and new != old and self.state.find(new.strip()):
            problem = f"a class named '{new.strip()}' exists already"
        return problem

    def edit_name(self, name: str) -> None:
        """Start the inline edit of a class's name (after "+ Add class")."""
        card = self.card(name)
        if card is not None:
            card.start_rename()

    def _ask_colour(self, name: str) -> None:
        color = QColorDialog.getColor(self.state.color(name), self, f"Colour of {name}")
        if color.isValid():
            self.recolourRequested.emit(name, color.name())
