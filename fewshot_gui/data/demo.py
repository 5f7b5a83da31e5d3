"""The built-in demo: procedurally drawn images (our own, MIT like the project) in four classes.

``ensure_demo()`` draws, once, into the user cache folder::

    demo-v1/examples/<class>/*.png   a few examples per class (the support set)
    demo-v1/unlabeled/*.png          ~60 mixed images to label (file names do not give the class)
    demo-v1/truth.json               the true class of each unlabeled image
    demo-v1/demo.fewshot             a project with the classes and examples

No Qt, no torch.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from fewshot_gui.core.paths import user_cache_dir
from fewshot_gui.data.project import ClassInfo, Project, save_project

DEMO_VERSION = "demo-v2"
CLASSES = ("circles", "stripes", "checkerboard", "gradient")
COLORS = {
    "circles": "#e6550d",
    "stripes": "#3182bd",
    "checkerboard": "#31a354",
    "gradient": "#756bb1",
}
SIZE = 128


@dataclass(frozen=True)
class DemoSet:
    """Where the demo lives and what is in it."""

    root: Path
    examples: dict[str, list[str]]
    unlabeled: Path
    truth: dict[str, str]
    project: Path


MIN_CONTRAST = 90
"""Background and pattern differ at least this much in brightness (0-255): every drawing shows
its class (a pattern in two nearly equal colours looks like a flat colour to anyone)."""


def _color(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(30, 256), rng.randrange(30, 256), rng.randrange(30, 256))


def _brightness(color: tuple[int, int, int]) -> float:
    r, g, b = color
    return 0.299 * r + 0.587 * g + 0.114 * b


def _colors(rng: random.Random) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A background and a pattern colour that contrast (see :data:`MIN_CONTRAST`)."""
    while True:
        bg, fg = _color(rng), _color(rng)
        if abs(_brightness(bg) - _brightness(fg)) >= MIN_CONTRAST:
            return bg, fg


def draw(kind: str, rng: random.Random, size: int = SIZE) -> Image.Image:
    """One image of class ``kind`` with random colours, scale, angle and noise."""
    bg, fg = _colors(rng)
    image = Image.new("RGB", (size, size), bg)
    pen = ImageDraw.Draw(image)
    if kind == "circles":
        for _ in range(rng.randrange(3, 9)):
            r = rng.randrange(size // 12, size // 4)
            x, y = rng.randrange(r, size - r), rng.randrange(r, size - r)  # inside the frame
            pen.ellipse((x - r, y - r, x + r, y + r), outline=fg, width=max(2, r // 4))
    elif kind == "stripes":
        period = rng.randrange(10, 26)
        big = Image.new("RGB", (size * 2, size * 2), bg)
        stripes = ImageDraw.Draw(big)
        for x0 in range(0, size * 2, period):
            stripes.rectangle((x0, 0, x0 + period // 2, size * 2), fill=fg)
        big = big.rotate(rng.uniform(0, 180), resample=Image.Resampling.BILINEAR)
        image = big.crop((size // 2, size // 2, size // 2 + size, size // 2 + size))
    elif kind == "checkerboard":
        cell = rng.randrange(10, 28)
        for i in range(0, size, cell):
            for j in range(0, size, cell):
                if (i // cell + j // cell) % 2:
                    pen.rectangle((i, j, i + cell - 1, j + cell - 1), fill=fg)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        dx, dy = math.cos(angle), math.sin(angle)
        pixels = image.load()
        for y in range(size):
            for x in range(size):
                t = ((x - size / 2) * dx + (y - size / 2) * dy) / size + 0.5
                t = min(1.0, max(0.0, t))
                pixels[x, y] = tuple(int(b + (f - b) * t) for b, f in zip(bg, fg, strict=True))
    else:
        raise ValueError(f"unknown demo class {kind!r}")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return image


def default_demo_root() -> Path:
    return user_cache_dir(DEMO_VERSION)


def ensure_demo(
    root: str | os.PathLike[str] | None = None,
    examples_per_class: int = 3,
    unlabeled_per_class: int = 15,
    seed: int = 7,
) -> DemoSet:
    """Draw the demo set under ``root`` (default: the user cache) unless it is already there."""
    base = Path(root) if root is not None else default_demo_root()
    truth_file = base / "truth.json"
    examples = {
        c: [str(base / "examples" / c / f"{c}_{i}.png") for i in range(examples_per_class)]
        for c in CLASSES
    }
    unlabeled = base / "unlabeled"
    project = base / "demo.fewshot"
    if not (
        truth_file.exists()
        and project.exists()
        and all(Path(p).exists() for ps in examples.values() for p in ps)
    ):
        rng = random.Random(seed)
        for name, paths in examples.items():
            Path(paths[0]).parent.mkdir(parents=True, exist_ok=True)
            for p in paths:
                draw(name, rng).save(p)
        unlabeled.mkdir(parents=True, exist_ok=True)
        order = [c for c in CLASSES for _ in range(unlabeled_per_class)]
        rng.shuffle(order)
        truth = {}
        for i, name in enumerate(order):
            path = unlabeled / f"image_{i:03d}.png"
            draw(name, rng).save(path)
            truth[str(path)] = name
        truth_file.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
        demo_project = Project(
            [ClassInfo(c, COLORS[c], examples[c]) for c in CLASSES],
            {},
            {"folder": str(unlabeled), "method": "auto"},
        )
        save_project(demo_project, project)
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    return DemoSet(base, examples, unlabeled, truth, project)


def demo_truth(folder: str | os.PathLike[str]) -> dict[str, str] | None:
    """The true class of each image when ``folder`` is a demo's ``unlabeled`` folder, else None."""
    path = Path(folder)
    truth_file = path.parent / "truth.json"
    if path.name != "unlabeled" or not (path.parent / "demo.fewshot").is_file():
        return None
    try:
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(truth, dict):
        return None
    return {str(p): str(c) for p, c in truth.items() if Path(p).parent == path}


def count_right(truth: dict[str, str], labels: dict[str, str | None]) -> int:
    """How many images of ``truth`` carry their true class in ``labels`` (path → label)."""
    return sum(labels.get(p) == c for p, c in truth.items())


def accuracy_line(truth: dict[str, str], labels: dict[str, str | None]) -> str:
    """One honest sentence: how many of the demo's labels are right, counted against the truth."""
    right, total = count_right(truth, labels), len(truth)
    if right == total:
        return f"Demo: all {total} labels are right (checked against the true classes)."
    return (
        f"Demo: {right} of {total} labels are right ({right / max(1, total):.0%}, checked against "
        "the true classes). Sort by least confident first, fix a wrong one with keys 1–4 and "
        "watch the others re-label."
    )
