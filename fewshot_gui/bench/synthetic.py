"""The one maker of synthetic images, for the tests, ``fewshot-gui bench`` and ``benchmarks/``.

* :func:`make_image`: one small image of a colour with a white top-left quarter (orientation can
  be checked), in any Pillow mode and format: the tests' workhorse.
* :func:`make_photos`: photo-like JPEGs (smooth colour fields, texture, noise) at camera-ish size,
  for decode and model throughput.
* :func:`make_tiny_images`: many small JPEGs fast (16 templates, bytes repeated), for memory and
  cache runs over 100,000 files.
* :func:`make_class_folders`: ``classes`` folders of images that differ by class (a colour and a
  stripe angle per class, jittered per image), for labeling and meta-training runs.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

_HIGH_DEPTH = {"I;16": np.uint16, "I": np.int32, "F": np.float32}


def make_image(
    path: str | os.PathLike[str],
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] = (200, 40, 40),
    mode: str = "RGB",
    fmt: str | None = None,
    **save_kwargs: object,
) -> Path:
    """Write a ``size`` image of ``color`` with a white top-left quarter; return its path.

    ``mode`` is any Pillow mode ("1", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", …);
    ``fmt`` defaults to the file extension; parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    if mode in _HIGH_DEPTH:
        top = {"I;16": 60000, "I": 60000, "F": 1.0}[mode]
        array = np.full((height, width), top * 0.3, dtype=np.float64)
        array[: height // 2, : width // 2] = top
        image = Image.fromarray(array.astype(_HIGH_DEPTH[mode]))
    else:
        image = Image.new("RGB", size, color)
        image.paste((255, 255, 255), (0, 0, width // 2, height // 2))
        if mode == "P":
            image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        elif mode != "RGB":
            image = image.convert(mode)
    image.save(path, format=fmt, **save_kwargs)
    return path


def make_photos(
    folder: Path, count: int, size: tuple[int, int] = (500, 375), seed: int = 0, first: int = 0
) -> None:
    """Write ``count`` photo-like JPEGs ``photo_<i>.jpg``, numbered from ``first``."""
    rng = np.random.default_rng(seed + first)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(first, first + count):
        coarse = rng.uniform(0, 255, size=(6, 8, 3)).astype(np.uint8)
        image = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, size=(h, w, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"photo_{i:06d}.jpg", quality=85
        )


def _make_part(args: tuple[str, int, int, float]) -> int:
    folder, first, count, deadline = args
    made = 0
    for start in range(first, first + count, 50):  # small steps, to stop at the deadline
        if time.time() > deadline:
            break
        step = min(50, first + count - start)
        make_photos(Path(folder), step, first=start)
        made += step
    return made


def make_photos_parallel(
    folder: Path, count: int, processes: int, time_limit: float | None = None
) -> int:
    """:func:`make_photos` on ``processes`` processes; stops after ``time_limit`` seconds.
    Returns how many photos were made."""
    from concurrent.futures import ProcessPoolExecutor

    deadline = time.time() + (time_limit if time_limit is not None else 1e9)
    per = -(-count // max(1, processes))
    parts = [(str(folder), f, min(per, count - f), deadline) for f in range(0, count, per)]
    if processes <= 1:
        return sum(map(_make_part, parts))
    with ProcessPoolExecutor(processes) as pool:
        return sum(pool.map(_make_part, parts))


def make_tiny_images(folder: Path, count: int, size: int = 64) -> None:
    """``count`` small JPEGs (16 random templates; contents repeat, files are distinct records),
    10,000 per sub-folder."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    templates = []
    for _ in range(16):
        base = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(base).save(buffer, format="JPEG", quality=80)
        templates.append(buffer.getvalue())
    for i in range(count):
        sub = folder / f"{i // 10_000:03d}"
        if i % 10_000 == 0:
            sub.mkdir(exist_ok=True)
        (sub / f"img_{i:07d}.jpg").write_bytes(templates[i % len(templates)])


def class_image(
    colour: np.ndarray, angle: int, size: tuple[int, int], rng: np.random.Generator
) -> Image.Image:
    """One image of a class: its ``colour`` jittered, white stripes leaning by ``angle``."""
    jittered = np.clip(colour + rng.normal(0, 25, 3), 0, 255).astype(np.uint8)
    width, height = size
    image = Image.new("RGB", size, tuple(int(v) for v in jittered))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, max(4, width // 13)):
        draw.line([(x, 0), (x + angle * width // 8, height)], fill=(255, 255, 255), width=3)
    return image


def make_class_folders(
    root: Path,
    classes: int,
    per_class: int,
    size: tuple[int, int] = (96, 80),
    mode: str = "RGB",
    ext: str = ".png",
    seed: int = 0,
) -> dict[str, list[Path]]:
    """``root/class<c>/img<i><ext>``: ``classes`` folders of ``per_class`` images that differ by
    class (colour and stripe angle; see :func:`class_image`), converted to ``mode``. Returns
    ``{class name: [paths]}``."""
    rng = np.random.default_rng(seed)
    made: dict[str, list[Path]] = {}
    for c in range(classes):
        colour, angle = rng.integers(40, 215, 3).astype(np.float64), c % 5 - 2
        folder = root / f"class{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = folder / f"img{i:05d}{ext}"
            class_image(colour, angle, size, rng).convert(mode).save(path)
            made.setdefault(folder.name, []).append(path)
    return made
