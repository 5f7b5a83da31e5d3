"""Fixtures shared by the data tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder named ``locked`` cannot be listed (as a chmod 000 folder for a normal user)."""
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
