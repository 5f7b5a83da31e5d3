"""Which image formats the project reads: every still-image format the installed Pillow decodes.

Derived from Pillow at run time (its registered openers and file name extensions), not listed by
hand, minus what cannot or should not be decoded here:

* stub formats whose loader is an outside plug-in that is not installed (BUFR, GRIB, HDF5, and WMF
  away from Windows),
* formats whose codec this Pillow was built without (JPEG 2000 without OpenJPEG, WebP, AVIF),
* EPS / PostScript (decoding runs the Ghostscript program on the file's code) and MPEG (a video
  header, not a still image).

Save-only formats (PDF, Palm) have no opener and never appear. Computed once, on first use:
importing Pillow's plug-ins takes ~0.1 s, which the app's start-up does not pay.
"""

from __future__ import annotations

import functools
import sys

EXCLUDED_FORMATS: frozenset[str] = frozenset({"EPS", "MPEG"})
"""Pillow formats never opened: EPS runs Ghostscript on the file; MPEG is not a still image."""

_CODEC_FEATURE = {
    "JPEG": "jpg",
    "JPEG2000": "jpg_2000",
    "PNG": "zlib",
    "WEBP": "webp",
    "AVIF": "avif",
}
"""Pillow feature a format's decoder needs (Pillow may be built without it)."""

_OPENED_AS = {"MPO": "JPEG"}
"""Formats with an extension but no opener of their own: Pillow's JPEG opener reads them."""


def _has_loader(factory: object) -> bool:
    """False for a stub format (e.g. HDF5) whose outside loader is not registered."""
    from PIL import ImageFile

    if not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile)):
        return True
    handler = getattr(factory, "_handler", None)  # Pillow ≥ 11: on the class
    if handler is None:  # Pillow 10: in the plug-in module
        handler = getattr(sys.modules.get(factory.__module__), "_handler", None)
    return handler is not None


def _codec_built(fmt: str) -> bool:
    from PIL import features

    name = _CODEC_FEATURE.get(fmt)
    known = {*features.modules, *features.codecs, *getattr(features, "features", {})}
    if name is None or name not in known:
        return True  # no optional codec involved (or one this Pillow cannot report on)
    return bool(features.check(name))


@functools.cache
def readable_formats() -> frozenset[str]:
    """Pillow format names (``"JPEG"``, ``"PPM"``, …) that :mod:`fewshot_gui.data.decode` opens."""
    from PIL import Image

    Image.init()
    return frozenset(
        fmt
        for fmt, (factory, _accept) in Image.OPEN.items()
        if fmt not in EXCLUDED_FORMATS and _has_loader(factory) and _codec_built(fmt)
    )


@functools.cache
def image_extensions() -> frozenset[str]:
    """Lower-case file name extensions (with the dot) of every readable format."""
    from PIL import Image

    formats = readable_formats()
    return frozenset(
        ext.lower()
        for ext, fmt in Image.registered_extensions().items()
        if _OPENED_AS.get(fmt, fmt) in formats
    )
