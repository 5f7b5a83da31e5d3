"""The wheel ships the models: ``pip wheel .`` maps the top-level ``resources/`` folder into the
``fewshot_gui.resources`` package (checkpoints, icons, desktop entry, MIME type), and an installed
wheel finds them through ``importlib.resources`` without the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "resources"
SOURCES = ("pyproject.toml", "setup.py", "README.md", "fewshot_gui", "resources")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the wheel is built from, so the build folders never land in the working
    tree (and files others add meanwhile do not count)."""
    source = tmp_path_factory.mktemp("wheel") / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.pyc")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    return source


@pytest.fixture(scope="module")
def wheel(source: Path) -> Path:
    """The wheel, built offline (no build isolation, no index)."""
    out = source.parent / "dist"
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps"]
    command += ["--no-build-isolation", "--no-index", "-q", "-w", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (found,) = out.glob("fewshot_gui-*.whl")
    return found


def _sizes(wheel: Path) -> dict[str, int]:
    with zipfile.ZipFile(wheel) as archive:
        return {info.filename: info.file_size for info in archive.infolist()}


def test_wheel_ships_checkpoints_icons_and_desktop_files(wheel: Path) -> None:
    sizes = _sizes(wheel)
    shipped = {f"fewshot_gui/resources/{p.relative_to(RESOURCES).as_posix()}": p.stat().st_size
               for p in RESOURCES.glob("checkpoints/*.pt")}  # fmt: skip
    assert shipped, "no checkpoints in resources/checkpoints"
    assert {name: sizes.get(name) for name in shipped} == shipped  # every one, whole
    icons = {f"fewshot_gui/resources/{p.relative_to(RESOURCES).as_posix()}"
             for p in RESOURCES.glob("icons/hicolor/*/apps/*")}  # fmt: skip
    assert len(icons) >= 8 and icons <= sizes.keys()
    for name in ("fewshot-gui.desktop", "fewshot-gui-mime.xml", "__init__.py", "README.md"):
        assert f"fewshot_gui/resources/{name}" in sizes
    assert "fewshot_gui/resources/screenshot.png" not in sizes  # README art stays out
    assert not [n for n in sizes if n.startswith(("resources/", "tests/", "packaging/"))]


def test_wheel_holds_every_module_and_the_command(wheel: Path, source: Path) -> None:
    sizes = _sizes(wheel)
    modules = {p.relative_to(source).as_posix() for p in (source / "fewshot_gui").rglob("*.py")}
    assert modules - sizes.keys() == set()  # a sub-package missing its __init__.py would be lost
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in sizes if n.endswith(".dist-info/entry_points.txt"))
        assert "fewshot-gui = fewshot_gui.cli:main" in archive.read(info).decode()
        top = next(n for n in sizes if n.endswith(".dist-info/top_level.txt"))
        assert archive.read(top).decode().split() == ["fewshot_gui"]


def test_installed_wheel_finds_its_resources_without_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from fewshot_gui.core import paths\n"
        "folder = paths.resources_dir()\n"
        "print(folder); print((folder / 'checkpoints' / 'photos.pt').is_file())"
    )
    # -S: no site-packages, so the repository's editable install cannot answer instead
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, str(site)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    )
    folder, present = done.stdout.split()
    assert Path(folder) == site / "fewshot_gui" / "resources" and present == "True"
