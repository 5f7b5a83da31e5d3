"""A panel listing files that could not be used, with the plain reason for each."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class FailedPanel(QWidget):
    """Path + reason per failed file (``FileFailure``); double click shows it in the grid."""

    countChanged = Signal(int)
    activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["file", "reason"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.cellDoubleClicked.connect(
            lambda row, _col: self.activated.emit(self.table.item(row, 0).text())
        )
        self._seen: set[str] = set()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)

    def add(self, failures: Sequence) -> None:  # FileFailure
        for failure in failures:
            if failure.path in self._seen:
                continue
            self._seen.add(failure.path)
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.table.setItem(row, 0, QTableWidgetItem(failure.path))
            self.table.setItem(row, 1, QTableWidgetItem(failure.reason))
        self.countChanged.emit(self.table.rowCount())

    def clear(self) -> None:
        self.table.setRowCount(0)
        self._seen.clear()
        self.countChanged.emit(0)

    def count(self) -> int:
        return self.table.rowCount()
