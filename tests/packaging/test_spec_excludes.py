"""The PyInstaller spec's lean-bundle exclusions never drop a Qt module the app or pyqtgraph imports
(a module excluded by mistake only shows up as a crash of the frozen app)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEEDED_BY_PYQTGRAPH = {"QtCore", "QtGui", "QtWidgets", "QtOpenGL", "QtOpenGLWidgets", "QtSvg"}


def _excluded_qt_modules() -> set[str]:
    spec = (ROOT / "packaging" / "fewshot-gui.spec").read_text()
    block = spec[spec.index("UNUSED_QT = [") : spec.index("EXCLUDES = [")]
    names = set(re.findall(r"\bQt[A-Za-z0-9]+\b", block))
    assert {"QtWebEngineCore", "QtQuick", "QtPdf", "QtMultimedia"} <= names  # it does trim
    return names


def _qt_modules_imported_by_the_app() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "fewshot_gui").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"PySide6\.(Qt[A-Za-z0-9]+)", text))
        for group in re.findall(r"from PySide6 import \(?([^)\n]+)", text):
            names |= set(re.findall(r"\bQt[A-Za-z0-9]+\b", group))
    return names


def test_no_qt_module_in_use_is_excluded():
    in_use = _qt_modules_imported_by_the_app() | NEEDED_BY_PYQTGRAPH
    assert "QtWidgets" in in_use
    assert not (_excluded_qt_modules() & in_use)
