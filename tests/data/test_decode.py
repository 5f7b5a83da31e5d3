"""Decoding: every mode to RGB, EXIF orientation, animations, bombs, and every failure reason."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from imagefactory import make_png_header_only
from PIL import Image

from fewshot_gui.core.errors import DecodeError
from fewshot_gui.data import decode
from fewshot_gui.data.decode import decode_image, describe_error, load_image_rgb, load_thumbnail

RED = (200, 40, 40)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("a.png", "1"),
        ("a.png", "L"),
        ("a.png", "LA"),
        ("a.png", "P"),
        ("a.png", "RGBA"),
        ("a.jpg", "CMYK"),
        ("a.tif", "CMYK"),
        ("a.png", "RGB"),
        ("a.bmp", "RGB"),
        ("a.webp", "RGB"),
        ("a.jpg", "L"),
        ("a.tiff", "RGBA"),
    ],
)
def test_modes_decode_to_rgb(tmp_path: Path, make_image, name: str, mode: str) -> None:
    path = make_image(tmp_path / name, mode=mode)
    image = load_image_rgb(path)
    assert image.mode == "RGB" and image.size == (64, 48)
    pixels = _pixels(image)
    assert (pixels[2, 2] >= 245).all(), "the white top-left quarter stays white"
    expected = np.asarray(Image.new("RGB", (1, 1), RED).convert(mode).convert("RGB"))[0, 0]
    expected = np.array(RED) if mode == "P" else expected  # make_image uses an exact palette
    if mode != "1":  # mode 1 dithers
        assert np.abs(pixels[40, 50] - expected).max() <= 6


def test_decode_image_always_usable_as_rgb(tmp_path: Path, make_image) -> None:
    for mode in ("L", "P", "RGBA", "CMYK"):
        image = decode_image(make_image(tmp_path / f"{mode}.png", mode=mode, fmt="TIFF"))
        assert image.mode == "RGB"


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_composited_on_white(tmp_path: Path, mode: str) -> None:
    image = Image.new("RGBA", (20, 10), (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 10, 10))  # left half: transparent black
    path = tmp_path / "t.png"
    if mode == "P":
        paletted = Image.new("P", (20, 10), 1)
        paletted.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)  # both entries black
        paletted.paste(0, (0, 0, 10, 10))
        paletted.save(path, transparency=0)
    else:
        image.convert(mode).save(path)
    pixels = _pixels(load_image_rgb(path))
    assert (pixels[5, 2] == 255).all(), "transparent black shows as white"
    assert (pixels[5, 15] == 0).all(), "opaque black stays black"


def test_half_transparent_blends(tmp_path: Path) -> None:
    path = tmp_path / "half.png"
    Image.new("RGBA", (4, 4), (0, 0, 0, 128)).save(path)
    assert abs(int(_pixels(load_image_rgb(path))[0, 0, 0]) - 127) <= 1


def _mode(path: Path) -> str:
    with Image.open(path) as image:
        return image.mode


def _save_array(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_sixteen_bit_scaled_not_clipped(tmp_path: Path) -> None:
    array = np.array([[0, 18000], [40000, 65535]], dtype=np.uint16)
    path = _save_array(tmp_path / "i16.png", array)
    assert _mode(path) == "I;16"
    grey = _pixels(load_image_rgb(path))[..., 0]
    assert grey.tolist() == [[0, 70], [156, 255]]


def test_twelve_bit_data_uses_its_own_range(tmp_path: Path) -> None:
    path = _save_array(tmp_path / "i12.png", np.array([[0, 2048], [4095, 100]], dtype=np.uint16))
    grey = _pixels(load_image_rgb(path))[..., 0]
    assert grey[1, 0] == 255 and 126 <= grey[0, 1] <= 129


def test_int32_and_float_images(tmp_path: Path) -> None:
    signed = _save_array(tmp_path / "i.tif", np.array([[-1000, 0], [1000, 3000]], dtype=np.int32))
    assert _mode(signed) == "I"
    assert _pixels(load_image_rgb(signed))[..., 0].tolist() == [[0, 64], [128, 255]]
    unit = _save_array(tmp_path / "f.tif", np.array([[0.0, 0.5], [1.0, np.nan]], np.float32))
    assert _mode(unit) == "F"
    assert _pixels(load_image_rgb(unit))[..., 0].tolist() == [[0, 128], [255, 0]]
    wide = _save_array(tmp_path / "g.tif", np.array([[-5.0, 0.0], [5.0, 5.0]], np.float32))
    assert _pixels(load_image_rgb(wide))[..., 0].tolist() == [[0, 128], [255, 255]]


@pytest.mark.parametrize(
    ("orientation", "white_corner"),
    [(1, (0, 0)), (3, (1, 1)), (6, (0, 1)), (8, (1, 0)), (2, (0, 1))],
)
def test_exif_orientation(tmp_path: Path, make_image, orientation: int, white_corner) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = make_image(tmp_path / "o.jpg", exif=exif.tobytes())
    image = load_image_rgb(path)
    transposed = orientation in (5, 6, 7, 8)
    assert image.size == ((48, 64) if transposed else (64, 48))
    pixels = _pixels(image)
    h, w = pixels.shape[:2]
    for row in (0, 1):
        for col in (0, 1):
            corner = pixels[4 + row * (h - 9), 4 + col * (w - 9)]
            is_white = bool((corner > 240).all())
            assert is_white == ((row, col) == white_corner), (orientation, row, col, corner)
    with decode_image(path) as lazy:
        assert lazy.size == image.size


def test_damaged_exif_is_ignored(tmp_path: Path, make_image) -> None:
    path = make_image(tmp_path / "e.jpg", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    assert load_image_rgb(path).size == (64, 48)


def test_plain_jpeg_is_lazy_so_draft_mode_works(tmp_path: Path, make_image) -> None:
    path = make_image(tmp_path / "big.jpg", size=(800, 600))
    with decode_image(path) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        image.draft("RGB", (200, 200))  # effective only before decoding
        assert image.size == (400, 300)
        assert np.abs(_pixels(image)[500 // 2 - 1, 700 // 2] - RED).max() <= 6


@pytest.mark.parametrize("fmt", ["gif", "webp", "tiff", "png"])
def test_first_frame_of_animations(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    path = tmp_path / f"anim.{fmt}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)
    with Image.open(path) as opened:
        assert getattr(opened, "n_frames", 1) == 3
    pixels = _pixels(load_image_rgb(path))
    assert pixels[8, 8, 0] > 200 and pixels[8, 8, 1] < 50


def _failure(path: str | Path) -> str:
    with pytest.raises(DecodeError) as info:
        load_image_rgb(path)
    return str(info.value)


def test_failure_reasons(tmp_path: Path, make_image) -> None:
    jpeg = make_image(tmp_path / "ok.jpg", size=(200, 150)).read_bytes()
    png = make_image(tmp_path / "ok.png", size=(200, 150)).read_bytes()
    cases = {
        "missing.jpg": (None, "file not found"),
        "empty.jpg": (b"", "empty file"),
        "text.png": (b"hello, I am text\n", "not an image file (it contains text)"),
        "noise.jpg": (b"\x00\x01\x02" + np.random.default_rng(1).bytes(3000), "not an image file"),
        "doc.jpg": (b"%PDF-1.4 ...", "not an image file (a PDF document)"),
        "cut.jpg": (jpeg[: len(jpeg) // 2], "truncated or incomplete image data"),
        "cut.png": (png[:-40], "truncated or incomplete image data"),
        "header.jpg": (jpeg[:20], "not an image file"),
    }
    for name, (data, _) in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    for name, (_, reason) in cases.items():
        assert _failure(tmp_path / name).startswith(reason), name
    (tmp_path / "folder.png").mkdir()
    assert _failure(tmp_path / "folder.png") == "is a folder, not a file"


def test_corrupt_middle_of_png(tmp_path: Path, make_image) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    path = tmp_path / "c.png"
    Image.fromarray(noise).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 50] = b"\xff" * 50
    path.write_bytes(bytes(data))
    assert "corrupt" in _failure(path) or "truncated" in _failure(path)


def test_lazy_truncated_jpeg_error_is_described(tmp_path: Path, make_image) -> None:
    data = make_image(tmp_path / "ok.jpg", size=(200, 150)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    image = decode_image(tmp_path / "cut.jpg")  # header is fine: decoding happens later
    with image, pytest.raises(OSError) as info:
        image.load()
    assert describe_error(info.value) == decode.TRUNCATED


def test_permission_denied(tmp_path: Path, make_image, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_image(tmp_path / "p.png")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(decode.Image, "open", refuse)
    assert _failure(path) == "permission denied"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_for_real(tmp_path: Path, make_image) -> None:
    path = make_image(tmp_path / "p.png")
    path.chmod(0)
    try:
        assert _failure(path) == "permission denied"
    finally:
        path.chmod(0o644)


def test_bomb_refused_above_configured_limit(tmp_path: Path, make_image) -> None:
    path = make_image(tmp_path / "a.png", size=(64, 48))
    with pytest.raises(
        DecodeError, match=r"image too large: 64×48 pixels exceeds the limit of 3,000"
    ):
        load_image_rgb(path, max_pixels=3000)
    with pytest.raises(DecodeError, match="too large"):
        decode_image(make_image(tmp_path / "b.jpg", size=(64, 48)), max_pixels=3000)
    with pytest.raises(DecodeError, match="too large"):
        load_thumbnail(path, 16, max_pixels=3000)
    assert load_image_rgb(path, max_pixels=3072).size == (64, 48)
    assert load_image_rgb(path, max_pixels=None).size == (64, 48)


def test_header_only_bombs_refused_at_default_limit(tmp_path: Path) -> None:
    huge = make_png_header_only(tmp_path / "huge.png", 100_000, 100_000)
    assert (
        _failure(huge) == "image too large: 10,000,000,000 pixels exceeds the limit of 178,956,970"
    )
    big = make_png_header_only(tmp_path / "big.png", 12_000, 10_000)  # Pillow only warns here
    with pytest.raises(DecodeError) as info:
        load_image_rgb(big, max_pixels=100_000_000)
    assert str(info.value) == "image too large: 12000×10000 pixels exceeds the limit of 100,000,000"


def test_thumbnail_fits_keeps_aspect_and_orientation(tmp_path: Path, make_image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = make_image(tmp_path / "r.jpg", size=(800, 600), exif=exif.tobytes())
    thumb = load_thumbnail(rotated, 128)
    assert thumb.mode == "RGB" and thumb.size == (96, 128)
    assert (_pixels(thumb)[5, 90] > 240).all()  # the white quarter moved to the top right
    small = make_image(tmp_path / "s.png", size=(40, 20), mode="P")
    assert load_thumbnail(small, 128).size == (40, 20)  # never enlarged
    with pytest.raises(DecodeError, match="empty file"):
        (tmp_path / "e.jpg").write_bytes(b"")
        load_thumbnail(tmp_path / "e.jpg", 64)


def test_decoding_never_writes(tmp_path: Path, make_image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = make_image(tmp_path / "r.jpg", exif=exif.tobytes())
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    load_image_rgb(path)
    load_thumbnail(path, 16)
    with decode_image(path) as image:
        image.load()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
