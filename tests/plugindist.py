"""An installed-looking distribution written by a test: a ``.dist-info`` folder with
``entry_points.txt`` (and optionally one module) under a folder that the test puts on ``sys.path``,
which is all ``importlib.metadata`` needs to find a plug-in (no pip)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_distribution(root: Path, name: str, entry_points: str, module: str = "") -> Path:
    """Distribution ``name`` under ``root``: metadata, ``entry_points`` (dedented) and, when given,
    ``module`` as ``<name>.py``. Returns ``root``."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if module:
        (root / f"{name}.py").write_text(module)
    return root
