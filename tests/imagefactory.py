"""A folder of every kind of bad input, and the synthetic image maker (helpers shared by the
tests; the fixtures of the same names live in conftest.py).

Helpers (plain functions, also available as fixtures of the same name):

* ``make_image(path, size=(64, 48), color=(200, 40, 40), mode="RGB", fmt=None, **save_kwargs)``
  is :func:`fewshot_gui.bench.synthetic.make_image`, the project's one synthetic-image maker
  (shared with ``fewshot-gui bench`` and ``benchmarks/``): ``color`` with a white top-left
  quarter, so orientation can be checked.
* ``build_bad_folder(root, undecodable_name=False) -> BadFolder`` writes a folder with every case
  of issue 2 point 2 (EXIF-rotated JPEG; modes 1/L/LA/P+transparency/RGBA/CMYK/I;16; animated
  GIF; truncated JPEG and PNG; empty .jpg; text named .png; random bytes named .jpg; a PNG whose
  header claims 100000×100000 pixels; unicode and odd names such as spaces, ``#``, commas,
  quotes, emoji; a hidden file and folder; a symlink loop; a non-image file). It returns a
  :class:`BadFolder` with ``root``, ``valid`` (paths that must decode), ``invalid``
  (``{path: reason substring}``: paths a scan finds that must fail with that reason),
  ``ignored`` (paths a scan must not return) and ``snapshot()`` (file hashes, to prove no input
  changed). Every path a scan of ``root`` should return is in ``valid`` or ``invalid``.
  ``undecodable_name=True`` adds a file whose name is not valid UTF-8 (Linux only).
* fixture ``bad_folder``: ``build_bad_folder(tmp_path / "bad input")``.
* fixture ``image_folder``: ``tmp_path / "images"`` with six small valid images in two
  sub-folders ``red`` and ``blue`` (a tiny class-folder layout).
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fewshot_gui.bench.synthetic import make_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png_header_only(path: str | os.PathLike[str], width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width``×``height`` 8-bit grey pixels (a fake bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data + _png_chunk(b"IEND", b""))
    return path


def file_hashes(root: str | os.PathLike[str]) -> dict[str, tuple[str, int, int]]:
    """``{relative path: (sha256, size, mtime_ns)}`` of every regular file (links not followed)."""
    result = {}
    for folder, dirs, files in os.walk(root):  # os.walk does not follow directory links
        for name in dirs + files:
            full = os.path.join(folder, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            info = os.stat(full)
            digest = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            result[os.path.relpath(full, root)] = (digest, info.st_size, info.st_mtime_ns)
    return result


@dataclass
class BadFolder:
    """What :func:`build_bad_folder` wrote; all paths are absolute ``str``."""

    root: Path
    valid: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def scanned(self) -> list[str]:
        """Every path a scan of ``root`` must return, sorted."""
        return sorted([*self.valid, *self.invalid])

    def snapshot(self) -> dict[str, tuple[str, int, int]]:
        return file_hashes(self.root)


def build_bad_folder(root: str | os.PathLike[str], undecodable_name: bool = False) -> BadFolder:
    """Write every kind of awkward input under ``root``; see the module docstring."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    bad = BadFolder(root)

    def valid(name: str, **kwargs: object) -> Path:
        path = make_image(root / name, **kwargs)  # type: ignore[arg-type]
        bad.valid.append(str(path))
        return path

    def invalid(name: str, data: bytes, reason: str) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        bad.invalid[str(root / name)] = reason

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    valid("exif_rotated.jpg", exif=exif.tobytes())
    for mode in ("1", "L", "LA", "RGBA", "I;16"):
        valid(f"modes/mode_{mode.replace(';', '')}.png", mode=mode)
    valid("modes/mode_P_transparent.png", mode="P", transparency=0)
    valid("modes/mode_CMYK.jpg", mode="CMYK")
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    bad.valid.append(str(root / "animated.gif"))
    valid("UPPER CASE.JPEG")
    valid("png_named.jpg", fmt="PNG")
    for name in (
        "café ünïcode.png",
        "日本語の写真.jpg",
        "emoji 🌸.webp",
        "with space #hash.png",
        "comma, 'quote' \"dq\".bmp",
        "-leading-dash.tif",
        "percent %20 semi;colon.gif",
    ):
        valid(f"odd names/{name}")
    valid("deep/er/and/deeper.png")

    good_jpeg = (root / "exif_rotated.jpg").read_bytes()
    good_png = (root / "modes/mode_L.png").read_bytes()
    invalid("truncated.jpg", good_jpeg[: len(good_jpeg) // 2], "truncated")
    invalid("truncated.png", good_png[: len(good_png) - 30], "truncated")
    invalid("empty.jpg", b"", "empty file")
    invalid("text.png", b"this is plain text, not a picture\n" * 4, "not an image file")
    rng = np.random.default_rng(7)
    invalid("corrupt.jpg", b"\x01\x02" + rng.bytes(4000), "not an image file")
    make_png_header_only(root / "bomb.png", 100_000, 100_000)
    bad.invalid[str(root / "bomb.png")] = "too large"

    make_image(root / ".hidden.jpg")
    make_image(root / ".hidden folder" / "inside.png")
    (root / "notes.txt").write_text("not an image")
    (root / "image.jpg.bak").write_bytes(good_jpeg)
    bad.ignored += [
        str(root / p)
        for p in (".hidden.jpg", ".hidden folder/inside.png", "notes.txt", "image.jpg.bak")
    ]
    os.symlink(root, root / "deep" / "loop to root")  # a symlink loop
    os.symlink(".", root / "modes" / "self loop")
    bad.ignored += [str(root / "deep" / "loop to root"), str(root / "modes" / "self loop")]
    if undecodable_name and sys.platform.startswith("linux"):
        name = os.fsencode(root) + b"/latin1 caf\xe9.png"
        make_image(os.fsdecode(name))
        bad.valid.append(os.fsdecode(name))
    return bad


def _image_folder(root: Path) -> Path:
    for cls, color in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        for i in range(3):
            make_image(root / cls / f"{cls}_{i}.png", color=color)
    return root
