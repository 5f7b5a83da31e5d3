"""The desktop entry, MIME type and icons in resources/ are complete and consistent."""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "resources"
MIME_TYPE = "application/x-fewshot-project"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(RESOURCES / "fewshot-gui.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_launches_the_app_for_project_files():
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Few-Shot Labeler"
    assert entry["Exec"].split()[0] == "fewshot-gui"  # install.sh makes it an absolute path
    assert "%f" in entry["Exec"].split()  # a double-clicked project file is passed on
    assert entry["Icon"] == "fewshot-gui"
    assert entry["Terminal"] == "false"
    assert MIME_TYPE in entry["MimeType"].rstrip(";").split(";")
    assert entry["Categories"].endswith(";")


def test_desktop_entry_validates_when_the_validator_is_installed():
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate not installed (Debian: desktop-file-utils)")
    result = subprocess.run(
        [validator, str(RESOURCES / "fewshot-gui.desktop")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mime_type_maps_the_fewshot_suffix():
    namespace = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    root = ET.parse(RESOURCES / "fewshot-gui-mime.xml").getroot()
    types = root.findall("m:mime-type", namespace)
    assert [t.get("type") for t in types] == [MIME_TYPE]
    globs = [g.get("pattern") for g in types[0].findall("m:glob", namespace)]
    assert globs == ["*.fewshot"]
    from fewshot_gui.data.project import SUFFIX

    assert globs[0] == f"*{SUFFIX}"


@pytest.mark.parametrize("size", SIZES)
def test_png_icons_exist_at_every_size(size):
    path = RESOURCES / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "fewshot-gui.png"
    with Image.open(path) as image:
        assert image.size == (size, size)
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] < 32  # rounded corner: (nearly) transparent
        assert image.getpixel((size // 2, size // 2))[3] == 255


def test_svg_icon_is_a_square_svg():
    root = ET.parse(RESOURCES / "icons" / "hicolor" / "scalable" / "apps" / "fewshot-gui.svg")
    svg = root.getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.get("viewBox") == "0 0 256 256"


def test_make_icons_draws_what_is_shipped(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_icons", ROOT / "packaging" / "make_icons.py"
    )
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)
    written = make_icons.write_icons(tmp_path)
    assert len(written) == len(SIZES)
    fresh = Image.open(tmp_path / "hicolor" / "32x32" / "apps" / "fewshot-gui.png")
    shipped = Image.open(RESOURCES / "icons" / "hicolor" / "32x32" / "apps" / "fewshot-gui.png")
    assert fresh.tobytes() == shipped.tobytes()  # resources/ is up to date
