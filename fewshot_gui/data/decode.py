"""Robust, read-only image decoding: one file in, one RGB :class:`PIL.Image.Image` out, or a
:class:`DecodeError` with a plain reason.

Opens every still-image format the installed Pillow decodes (:mod:`fewshot_gui.data.formats`: PPM,
TGA, JPEG 2000, ICO, … but never EPS, whatever a file is named). Handles EXIF orientation, every mode
(1, L, LA, La, P with transparency, RGBA, CMYK, YCbCr, LAB, I;16, I, F), the first frame of
animations, and refuses decompression bombs above a configurable pixel limit.
Files are opened read-only and never written. No global Pillow setting is changed, except that
Pillow's own decompression-bomb *warning* is silenced: :func:`decode_image` turns a large image
into a plain :class:`DecodeError` itself.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fewshot_gui.core.errors import DecodeError
from fewshot_gui.data.formats import readable_formats

DEFAULT_MAX_PIXELS = 178_956_970
"""Largest image (width × height) decoded by default: where Pillow itself refuses an image
(twice ``PIL.Image.MAX_IMAGE_PIXELS``). A larger ``max_pixels`` also needs that raised."""

TRUNCATED = "truncated or incomplete image data"

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_ORIENTATION_TAG = 0x0112
CORRUPT = "corrupt image data (the compressed data is damaged)"

_TRUNCATION_HINTS = ("truncated", "incomplete", "premature end", "not enough data")
_CORRUPTION_HINTS = ("broken data stream", "unrecognized data stream", "decoding error", "overrun")

warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def describe_error(err: BaseException) -> str:
    """The plain reason for an exception raised while opening or decoding one image file."""
    if isinstance(err, DecodeError):
        return str(err)
    if isinstance(err, FileNotFoundError):
        return "file not found"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(err, MemoryError):
        return "not enough memory to decode this image"
    if isinstance(err, Image.DecompressionBombError):
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(found.group(1)):,} pixels" if found else "its size"
        return f"image too large: {pixels} exceeds Pillow's safety limit"
    message = str(err).strip()
    if isinstance(err, EOFError) or any(h in message.lower() for h in _TRUNCATION_HINTS):
        return TRUNCATED
    if any(h in message.lower() for h in _CORRUPTION_HINTS):
        return CORRUPT
    if isinstance(err, OSError) and err.strerror:
        return f"cannot read file ({err.strerror})"
    if isinstance(err, (SyntaxError, ValueError, OSError, zlib.error, IndexError, TypeError)):
        return f"corrupt image data ({message or type(err).__name__})"
    return f"cannot decode image ({type(err).__name__}: {message})"


def _sniff(path: str) -> str:
    """What a file that Pillow cannot identify seems to be, in a few words."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(512)
    except OSError:
        return "unreadable"
    for magic, what in (
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x1f\x8b", "gzip data"),
        (b"<svg", "an SVG drawing, which is not supported"),
        (b"<?xml", "XML text"),
        (b"<!DOCTYPE html", "an HTML page"),
        (b"<html", "an HTML page"),
    ):
        if head.lstrip().startswith(magic):
            return what
    if b"ftypheic" in head[:32] or b"ftypheix" in head[:32] or b"ftypmif1" in head[:32]:
        return "HEIC/HEIF, which is not supported"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised data"
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return "it contains text"
    return "unrecognised data"


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1 = upright); a damaged EXIF block counts as upright."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
        return int(value) if isinstance(value, int) else 1
    except Exception:
        return 1


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Mode I;16 / I / F → mode L, scaled by the data's bit depth (not clipped at 255).

    Integer data with no negative values is divided by the smallest ``2**bits - 1`` that holds its
    maximum (so 12-bit data stays as bright as 16-bit data); float data in [0, 1] is multiplied by
    255; anything else is stretched from its minimum to its maximum.
    """
    array = np.asarray(image)
    if array.dtype.kind == "f":
        array = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if array.dtype.kind in "iu" and low >= 0:
        top = 255.0 if high <= 255 else float(2 ** math.ceil(math.log2(high + 1)) - 1)
        scaled = array.astype(np.float64) * (255.0 / top)
    elif array.dtype.kind == "f" and low >= 0 and high <= 1:
        scaled = array * 255.0
    else:
        span = high - low
        scaled = (array.astype(np.float64) - low) * (255.0 / span if span > 0 else 0.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """A loaded image of any mode → a new RGB image (alpha composited on white)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
    elif image.mode == "La":  # premultiplied: Pillow converts it only to LA
        image = image.convert("LA")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _check_size(image: Image.Image, max_pixels: int | None) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise DecodeError(f"corrupt image data (size {width}×{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise DecodeError(
            f"image too large: {width}×{height} pixels exceeds the limit of {max_pixels:,}"
        )


@functools.cache
def _open_formats() -> tuple[str, ...]:
    """The formats :func:`_open` tries, in Pillow's own order of trying."""
    readable = readable_formats()
    return tuple(fmt for fmt in Image.ID if fmt in readable)


def _open(path: str, max_pixels: int | None) -> Image.Image:
    """Open (header only) or raise :class:`DecodeError` with the reason."""
    try:
        info = os.stat(path)
    except OSError as err:
        raise DecodeError(describe_error(err)) from None
    if stat.S_ISDIR(info.st_mode):
        raise DecodeError("is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise DecodeError("not a regular file")
    if info.st_size == 0:
        raise DecodeError("empty file")
    try:
        return Image.open(path, formats=_open_formats())  # read-only; Pillow never writes here
    except UnidentifiedImageError:
        raise DecodeError(f"not an image file ({_sniff(path)})") from None
    except Image.DecompressionBombError as err:  # beyond twice Pillow's own limit
        found = re.search(r"\((\d+) pixels\)", str(err))
        if found and max_pixels is not None and int(found.group(1)) > max_pixels:
            raise DecodeError(
                f"image too large: {int(found.group(1)):,} pixels exceeds the limit of "
                f"{max_pixels:,}"
            ) from None
        raise DecodeError(describe_error(err)) from None
    except Exception as err:
        raise DecodeError(describe_error(err)) from None


def _decode(
    path: str, max_pixels: int | None, *, lazy: bool, draft: int | None = None
) -> Image.Image:
    image = _open(path, max_pixels)
    keep_open = False
    try:
        _check_size(image, max_pixels)
        if lazy and image.format == "JPEG" and image.mode == "RGB" and _orientation(image) == 1:
            keep_open = True
            return image  # not decoded yet: the caller may still ask for JPEG draft mode
        if draft is not None and image.format == "JPEG":
            image.draft("RGB", (draft, draft))
        image.load()  # the first frame; before reading EXIF, which may load a PNG itself
        frame = image
        if _orientation(image) != 1:
            frame = ImageOps.exif_transpose(image)
        return _to_rgb(frame)
    except DecodeError:
        raise
    except Exception as err:
        raise DecodeError(describe_error(err)) from None
    finally:
        if not keep_open:
            image.close()


def decode_image(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode the first frame of an image file as RGB, EXIF orientation applied.

    A plain upright RGB JPEG is returned opened but not yet decoded (``image.format == "JPEG"``),
    so the caller may still call ``image.draft(...)`` before converting; errors that appear only
    while such an image is decoded later can be turned into a plain reason with
    :func:`describe_error`. Any other image is returned decoded, as a new RGB image.

    Raises :class:`DecodeError` (missing, unreadable, empty, not an image, truncated, corrupt, or
    larger than ``max_pixels`` pixels; ``None`` means no limit of our own).
    """
    return _decode(os.fspath(path), max_pixels, lazy=True)


def load_image_rgb(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Like :func:`decode_image` but always fully decoded to RGB (all errors raised here)."""
    return _decode(os.fspath(path), max_pixels, lazy=False)


def load_thumbnail(
    path: str | os.PathLike[str], size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """An RGB image that fits in ``size``×``size`` (aspect kept), EXIF orientation applied.

    JPEGs are decoded in draft mode (at 1/2, 1/4 or 1/8 scale) when they are large enough, which
    makes thumbnails of camera photos several times faster. Raises :class:`DecodeError`.
    """
    if size < 1:
        raise ValueError(f"thumbnail size must be positive, got {size}")
    image = _decode(os.fspath(path), max_pixels, lazy=False, draft=size)
    image.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return image
