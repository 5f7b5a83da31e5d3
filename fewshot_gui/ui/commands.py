"""Undoable edits (QUndoCommand) of the :class:`LabelState`: every label change can be undone."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QUndoCommand

from fewshot_gui.data.project import ClassInfo
from fewshot_gui.ui.state import LabelState


class LabelImages(QUndoCommand):
    """Give images a user label (None: clear it); they join (or leave) the support set."""

    def __init__(self, state: LabelState, paths: Sequence[str], label: str | None) -> None:
        what = f"label {len(paths)} image(s) as {label}" if label else "clear label"
        super().__init__(what)
        self.state, self.paths, self.label = state, list(paths), label
        self.previous: dict[str, str | None] = {}

    def redo(self) -> None:
        self.previous = self.state.set_corrections({p: self.label for p in self.paths})

    def undo(self) -> None:
        self.state.set_corrections(self.previous)


class AddExamples(QUndoCommand):
    def __init__(self, state: LabelState, name: str, paths: Sequence[str]) -> None:
        super().__init__(f"add {len(paths)} example(s) to {name}")
        self.state, self.name, self.paths = state, name, list(paths)
        self.added: list[str] = []
        self.moved_from: dict[str, str] = {}

    def redo(self) -> None:
        self.moved_from = {
            p: lab
            for p in self.paths
            if (lab := self.state.label_of_example(p)) and lab != self.name
        }
        self.added = self.state.add_examples(self.name, self.paths)

    def undo(self) -> None:
        self.state.remove_examples(self.name, self.added)
        for path, name in self.moved_from.items():
            self.state.add_examples(name, [path])


class RemoveExamples(QUndoCommand):
    def __init__(self, state: LabelState, name: str, paths: Sequence[str]) -> None:
        super().__init__(f"remove {len(paths)} example(s) from {name}")
        self.state, self.name, self.paths = state, name, list(paths)
        self.removed: list[str] = []

    def redo(self) -> None:
        self.removed = self.state.remove_examples(self.name, self.paths)

    def undo(self) -> None:
        self.state.add_examples(self.name, self.removed)


class AddClass(QUndoCommand):
    def __init__(self, state: LabelState, info: ClassInfo) -> None:
        super().__init__(f"add class {info.name}")
        self.state, self.info = state, info

    def redo(self) -> None:
        self.state.insert_class(self.info)

    def undo(self) -> None:
        self.state.remove_class(self.info.name)


class DeleteClass(QUndoCommand):
    def __init__(self, state: LabelState, name: str) -> None:
        super().__init__(f"delete class {name}")
        self.state, self.name = state, name
        self.saved: tuple[int, ClassInfo, dict[str, str]] | None = None

    def redo(self) -> None:
        self.saved = self.state.remove_class(self.name)

    def undo(self) -> None:
        if self.saved is None:
            return
        index, info, corrections = self.saved
        self.state.insert_class(info, index)
        if corrections:
            self.state.set_corrections(dict(corrections))


class RenameClass(QUndoCommand):
    def __init__(self, state: LabelState, old: str, new: str) -> None:
        super().__init__(f"rename class {old} to {new}")
        self.state, self.old, self.new = state, old, new

    def redo(self) -> None:
        self.state.rename_class(self.old, self.new)

    def undo(self) -> None:
        self.state.rename_class(self.new, self.old)


class RecolourClass(QUndoCommand):
    def __init__(self, state: LabelState, name: str, color: str) -> None:
        super().__init__(f"recolour class {name}")
        info = state.find(name)
        self.state, self.name, self.color = state, name, color
        self.old = info.color if info else color

    def redo(self) -> None:
        self.state.set_color(self.name, self.color)

    def undo(self) -> None:
        self.state.set_color(self.name, self.old)
