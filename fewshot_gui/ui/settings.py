"""Persisted settings (QSettings): recent projects, window geometry and state, last choices, and
the folder for files the app keeps for the user (the untitled session's autosave)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 8


class AppSettings:
    """``data_dir``: where the untitled session is autosaved (default: beside an ini-file
    QSettings, else the platform's user data folder)."""

    def __init__(self, settings: QSettings | None = None, data_dir: str | None = None) -> None:
        self.q = settings or QSettings("fewshot-gui", "fewshot-gui")
        self._data_dir = data_dir

    def data_dir(self) -> Path:
        if self._data_dir:
            return Path(self._data_dir)
        if self.q.format() == QSettings.Format.IniFormat:
            return Path(self.q.fileName()).parent
        from fewshot_gui.core.paths import user_data_dir

        return user_data_dir()

    def recent_projects(self) -> list[str]:
        value = self.q.value("recentProjects", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [p for p in items if isinstance(p, str) and os.path.exists(p)]

    def add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        items = [path, *[p for p in self.recent_projects() if p != path]][:MAX_RECENT]
        self.q.setValue("recentProjects", items)

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def window(self) -> tuple[QByteArray | None, QByteArray | None]:
        return self.q.value("window/geometry"), self.q.value("window/state")

    def last(self, key: str, default: str = "") -> str:
        value = self.q.value(f"last/{key}", default)
        return value if isinstance(value, str) else default

    def set_last(self, key: str, value: str) -> None:
        self.q.setValue(f"last/{key}", value)
