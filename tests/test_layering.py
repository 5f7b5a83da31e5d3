"""The engine imports no Qt; the views import no torch (checked in fresh interpreters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fewshot_gui"
ENGINE = ["core", "data", "encoders", "adapters", "training"]


def _engine_modules() -> list[str]:
    modules = ["fewshot_gui.session", "fewshot_gui.commands.label"]
    for layer in ENGINE:
        for path in sorted((PACKAGE / layer).glob("*.py")):
            name = path.stem
            modules.append(
                f"fewshot_gui.{layer}" if name == "__init__" else f"fewshot_gui.{layer}.{name}"
            )
    return modules


def _loaded_after_import(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print('\\n'.join(sorted(n for n in sys.modules if n.startswith({prefixes!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def test_engine_imports_no_qt():
    assert (
        _loaded_after_import(_engine_modules(), ("PySide6", "pyqtgraph", "superqt", "shiboken6"))
        == []
    )


def test_views_import_no_torch():
    views = [
        f"fewshot_gui.{layer}.{p.stem}"
        for layer in ("ui", "plots")
        for p in sorted((PACKAGE / layer).glob("*.py"))
        if p.stem != "__init__"
    ]
    if not views:
        pytest.skip("no views yet")
    assert _loaded_after_import(views, ("torch",)) == []
