"""Fixtures shared by all tests; the helpers behind them are in imagefactory.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from imagefactory import (
    BadFolder,
    _image_folder,
    build_bad_folder,
    make_image,
)


@pytest.fixture(name="make_image")
def make_image_fixture():
    return make_image


@pytest.fixture
def bad_folder(tmp_path: Path) -> BadFolder:
    return build_bad_folder(tmp_path / "bad input")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return _image_folder(tmp_path / "images")
