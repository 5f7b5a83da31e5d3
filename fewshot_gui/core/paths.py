"""Where fewshot-gui finds what it ships and keeps what it makes: the one place for folders.

* :func:`resources_dir`: checkpoints, icons, desktop entry. ``$FEWSHOT_GUI_RESOURCES`` when set
  (the PyInstaller bundle sets it), else the ``fewshot_gui.resources`` package found through
  :mod:`importlib.resources`: the repository's top-level ``resources/`` folder, which
  ``pyproject.toml`` maps to that package for an editable install and a wheel alike. A source
  tree used without installing (``PYTHONPATH=.``) falls back to ``resources/`` beside the package.
* :func:`user_cache_dir`: ``$FEWSHOT_GUI_CACHE`` or the platform's user cache folder
  (``~/.cache/fewshot-gui`` on Linux). Embedding caches, thumbnails and the demo images live in it.
* :func:`user_data_dir`: the platform's user data folder (autosaves of untitled sessions).

No Qt, no torch.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from pathlib import Path

APP_NAME = "fewshot-gui"
RESOURCES_PACKAGE = "fewshot_gui.resources"
RESOURCES_ENV = "FEWSHOT_GUI_RESOURCES"
CACHE_ENV = "FEWSHOT_GUI_CACHE"


@functools.cache
def packaged_resources() -> Path | None:
    """The folder of the ``fewshot_gui.resources`` package, or None when it is not installed (or
    not a plain folder, e.g. inside a zip)."""
    try:
        folder = importlib.resources.files(RESOURCES_PACKAGE)
    except ModuleNotFoundError:
        return None
    return folder if isinstance(folder, Path) and folder.is_dir() else None


def resources_dir() -> Path:
    """The shipped resources folder (see the module docstring for the order it is looked for)."""
    env = os.environ.get(RESOURCES_ENV)
    if env:
        return Path(env).expanduser()
    return packaged_resources() or Path(__file__).resolve().parents[2] / "resources"


def user_cache_dir(*parts: str) -> Path:
    """``$FEWSHOT_GUI_CACHE`` (or the platform's user cache folder) joined with ``parts``,
    e.g. ``user_cache_dir("thumbnails")``. Not created here."""
    env = os.environ.get(CACHE_ENV)
    if env:
        base = Path(env).expanduser()
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return base.joinpath(*parts)


def user_data_dir() -> Path:
    """The platform's user data folder (``~/.local/share/fewshot-gui`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
