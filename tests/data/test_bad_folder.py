"""The shared ``bad_folder`` fixture is what it claims, and the data layer handles all of it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from imagefactory import build_bad_folder

from fewshot_gui.core.errors import DecodeError
from fewshot_gui.data.decode import load_image_rgb, load_thumbnail
from fewshot_gui.data.folder import scan_class_folders, scan_folder


def test_scan_finds_exactly_valid_and_invalid(bad_folder) -> None:
    found = [r.path for r in scan_folder(bad_folder.root)]
    assert found == bad_folder.scanned
    assert not set(found) & set(bad_folder.ignored)
    assert all(os.path.lexists(p) for p in bad_folder.ignored)
    assert {"truncated", "empty file", "not an image file", "too large"} <= set(
        bad_folder.invalid.values()
    )


def test_each_file_decodes_or_fails_with_its_reason(bad_folder) -> None:
    before = bad_folder.snapshot()
    for path in bad_folder.valid:
        image = load_image_rgb(path)
        assert image.mode == "RGB" and min(image.size) > 0
        assert max(load_thumbnail(path, 24).size) <= 24
    for path, reason in bad_folder.invalid.items():
        with pytest.raises(DecodeError, match=reason):
            load_image_rgb(path)
        with pytest.raises(DecodeError, match=reason):
            load_thumbnail(path, 24)
    assert bad_folder.snapshot() == before


def test_class_scan_of_bad_folder(bad_folder) -> None:
    classes = scan_class_folders(bad_folder.root)
    assert list(classes) == ["deep", "modes", "odd names"]
    assert len(classes["modes"]) == 7


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="byte file names: Linux")
def test_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    bad = build_bad_folder(tmp_path / "b", undecodable_name=True)
    odd = [p for p in bad.valid if "caf" in p and "latin1" in p]
    assert len(odd) == 1
    assert odd[0] in [r.path for r in scan_folder(bad.root)]
    assert load_image_rgb(odd[0]).size == (64, 48)
