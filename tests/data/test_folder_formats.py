"""Every still-image format the installed Pillow decodes is found by the scan and decodes to RGB;
formats that must not be opened (EPS, MPEG, stubs) are neither listed nor opened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from fewshot_gui.core.errors import DecodeError
from fewshot_gui.data.decode import load_image_rgb
from fewshot_gui.data.folder import IMAGE_EXTENSIONS, is_image_name, scan_folder
from fewshot_gui.data.formats import readable_formats

RED = (200, 40, 40)

SAVE_MODE = {"XBM": "1", "MSP": "1", "SPIDER": "F", "BLP": "P", "PALM": "P"}
"""A mode each format can save (RGB otherwise)."""

SIZE_CHANGES = {"ICO", "ICNS"}
"""Formats that store an image at their own sizes."""

LOSSY = {"JPEG", "MPO", "WEBP", "AVIF", "JPEG2000"}


def _saveable() -> list[tuple[str, str]]:
    Image.init()
    by_format: dict[str, str] = {}
    for ext, fmt in sorted(Image.registered_extensions().items()):
        if ext in IMAGE_EXTENSIONS and fmt in Image.SAVE:
            by_format.setdefault(fmt, ext)
    return sorted(by_format.items())


def test_extensions_come_from_pillow() -> None:
    for ext in (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"):
        assert ext in IMAGE_EXTENSIONS  # everything accepted before stays accepted
    for ext in (".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".psd", ".qoi", ".jfif", ".mpo"):
        assert ext in IMAGE_EXTENSIONS
    assert (".jp2" in IMAGE_EXTENSIONS) == features.check("jpg_2000")
    for ext in (".eps", ".ps", ".pdf", ".mpg", ".mpeg", ".h5", ".grib", ".bufr", ".palm", ".txt"):
        assert ext not in IMAGE_EXTENSIONS
    assert not {"EPS", "MPEG", "PDF", "HDF5", "GRIB", "BUFR"} & readable_formats()
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    assert is_image_name("SIGN.PPM") and not is_image_name(".sign.ppm")


def test_importing_the_folder_scan_does_not_load_pillow() -> None:
    code = (
        "import sys\n"
        "from fewshot_gui.data.folder import IMAGE_EXTENSIONS, is_image_name\n"
        "assert 'PIL.Image' not in sys.modules, 'imported Pillow'\n"
        "assert '.ppm' in IMAGE_EXTENSIONS and is_image_name('a.PPM')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.filterwarnings("ignore:IM image format is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("fmt", "ext"), _saveable())
def test_every_saveable_format_is_scanned_and_decodes(tmp_path: Path, fmt: str, ext: str) -> None:
    image = Image.new("RGB", (24, 16), RED).convert(SAVE_MODE.get(fmt, "RGB"))
    path = tmp_path / f"sub/img{ext.upper()}"
    path.parent.mkdir()
    image.save(path, format=fmt)
    assert [r.path for r in scan_folder(tmp_path)] == [str(path)]
    decoded = load_image_rgb(path)
    assert decoded.mode == "RGB"
    if fmt not in SIZE_CHANGES:
        assert decoded.size == (24, 16)
    if SAVE_MODE.get(fmt, "RGB") == "RGB" and fmt not in LOSSY:
        assert decoded.getpixel((12, 8)) == RED  # lossless formats keep the colour exactly


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(load_image_rgb(path), dtype=np.int16)


def test_netpbm_family_and_odd_modes(tmp_path: Path) -> None:
    ramp16 = (np.arange(16 * 8, dtype=np.uint16).reshape(8, 16) * 500).astype(np.uint16)
    Image.fromarray(ramp16).save(tmp_path / "deep.pgm")  # 16-bit PGM: mode I;16 (or I)
    assert Image.open(tmp_path / "deep.pgm").mode in ("I;16", "I", "I;16B")
    deep = _pixels(tmp_path / "deep.pgm")
    assert deep[0, 0, 0] == 0 and deep[-1, -1, 0] > 200  # scaled by its depth, not clipped
    Image.new("1", (8, 8), 1).save(tmp_path / "bits.pbm")
    assert (_pixels(tmp_path / "bits.pbm") == 255).all()
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(tmp_path / "float.pfm")
    assert abs(int(_pixels(tmp_path / "float.pfm")[0, 0, 0]) - 128) <= 1
    Image.new("RGBA", (8, 8), (0, 0, 255, 0)).save(tmp_path / "clear.tga")
    assert (_pixels(tmp_path / "clear.tga") == 255).all()  # transparent → white
    Image.new("RGBA", (32, 32), (*RED, 255)).save(tmp_path / "icon.ico")
    assert tuple(_pixels(tmp_path / "icon.ico")[5, 5]) == RED
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, *RED] + [0] * 762)
    palette.save(tmp_path / "pal.tga")
    assert tuple(_pixels(tmp_path / "pal.tga")[0, 0]) == RED
    Image.new("LA", (8, 8), (100, 255)).save(tmp_path / "la.png")
    assert tuple(_pixels(tmp_path / "la.png")[0, 0]) == (100, 100, 100)
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")
    assert tuple(_pixels(tmp_path / "cmyk.tif")[0, 0]) == (255, 0, 0)
    Image.fromarray(np.full((4, 4), 70000, np.int32)).save(tmp_path / "int.tif")
    assert _pixels(tmp_path / "int.tif").max() > 0


@pytest.mark.skipif(not features.check("jpg_2000"), reason="Pillow built without OpenJPEG")
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_jpeg_2000(tmp_path: Path, mode: str) -> None:
    Image.new(mode, (16, 16), (RED if mode != "L" else 120)).save(tmp_path / f"{mode}.jp2")
    assert load_image_rgb(tmp_path / f"{mode}.jp2").size == (16, 16)


def test_premultiplied_alpha_mode_converts() -> None:
    from fewshot_gui.data.decode import _to_rgb

    image = Image.new("LA", (4, 4), (100, 255)).convert("La")
    assert image.mode == "La"
    assert _to_rgb(image).getpixel((0, 0)) == (100, 100, 100)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("postscript.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"),
        ("video.png", b"\x00\x00\x01\xb3" + b"\x10\x00\x80\x13" + bytes(64)),
    ],
)
def test_formats_never_opened_whatever_the_name(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DecodeError, match="not an image file"):
        load_image_rgb(tmp_path / name)
