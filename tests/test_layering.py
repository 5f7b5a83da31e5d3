"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they catch a violation;
and at run time (fresh interpreters) the engine loads no Qt and the views load no torch, which also
covers imports by name (``importlib.import_module``) that a static contract cannot see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fewshot_gui"
PYPROJECT = ROOT / "pyproject.toml"
ENGINE = ["core", "data", "encoders", "adapters", "training"]


def test_import_contracts_hold(capsys) -> None:
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "0 broken" in report


def _fake_package(root: Path, name: str, contracts: dict) -> None:
    """Every module the contracts name, empty, under package ``name``."""
    modules = {name}
    for contract in contracts["contracts"]:
        modules.update(contract.get("source_modules", []))
        modules.update(contract.get("forbidden_modules", []))
        modules.update(contract.get("ancestors", []))
        for layer in contract.get("layers", []):
            modules.update(f"{name}.{tail.strip()}" for tail in layer.split(":"))
    for module in modules:
        if not module.startswith(name):
            continue
        folder = root.joinpath(*module.split("."))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").touch()


def test_the_contracts_catch_each_kind_of_violation(tmp_path, monkeypatch, capsys) -> None:
    tomllib = pytest.importorskip("tomllib")
    name = "fakegui"
    text = PYPROJECT.read_text(encoding="utf-8").replace("fewshot_gui", name)
    contracts = tomllib.loads(text)["tool"]["importlinter"]
    _fake_package(tmp_path, name, contracts)
    package = tmp_path / name
    violations = {
        "core/__init__.py": f"from {name} import session\n",  # a lower layer imports a higher
        "session/__init__.py": "import PySide6\n",  # Qt in the engine
        "ui/__init__.py": f"import {name}.workers\n",  # a view imports the worker
        "plots/__init__.py": "import torch\n",  # torch in a view
        "data/loader.py": f"from {name}.data import gpu_decode\n",  # an import cycle
        "data/gpu_decode.py": f"from {name}.data import loader\n",
        "cluster/shards.py": "def save():\n    import torch\n",  # the one allowed exception
    }
    for path, source in violations.items():
        (package / path).write_text(source, encoding="utf-8")
    config = tmp_path / "contracts.toml"
    config.write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))

    code = lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 1, report
    assert "Contracts: 0 kept, 4 broken." in report
    for line in (
        f"{name}.core is not allowed to import {name}.session",
        f"{name}.session is not allowed to import PySide6",
        f"{name}.ui is not allowed to import {name}.workers",
        f"{name}.plots is not allowed to import torch",
        "No cycles are allowed in fakegui.data",
    ):
        assert line in report, report


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
    assert _loaded_after_import(_engine_modules(), ("PySide6", "pyqtgraph", "shiboken6")) == []


def test_views_import_no_torch():
    views = [
        f"fewshot_gui.{layer}.{p.stem}"
        for layer in ("qt", "ui", "plots")
        for p in sorted((PACKAGE / layer).glob("*.py"))
        if p.stem != "__init__"
    ]
    assert _loaded_after_import(views, ("torch",)) == []
