"""Render the app icon into PNGs for the hicolor theme sizes (our own art, drawn with PIL).

The shapes match ``resources/icons/hicolor/scalable/apps/fewshot-gui.svg`` (written by hand): a dark
rounded square, four class tiles in the demo's colours and a white badge with a check mark. Each size is
drawn 4x larger and downscaled for smooth edges::

    python packaging/make_icons.py [--out resources/icons]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
CANVAS = 256  # the SVG's view box
TILES = (
    ((40, 40), "#e6550d"),
    ((136, 40), "#3182bd"),
    ((40, 136), "#31a354"),
    ((136, 136), "#756bb1"),
)
TILE, TILE_RADIUS = 80, 14
BADGE_CENTER, BADGE_RADIUS = (196, 196), 42
CHECK = ((174, 197), (190, 213), (220, 181))
CHECK_WIDTH = 13
BACKGROUND_TOP, BACKGROUND_BOTTOM = (0x37, 0x41, 0x51), (0x11, 0x18, 0x27)


def draw_icon(size: int) -> Image.Image:
    """The icon as a ``size`` x ``size`` RGBA image."""
    scale = 4 * size / CANVAS
    big = 4 * size

    def s(value: float) -> int:
        return round(value * scale)

    gradient = Image.new("RGBA", (1, big))
    for y in range(big):
        t = y / max(big - 1, 1)
        gradient.putpixel(
            (0, y),
            (
                *(
                    round(a + (b - a) * t)
                    for a, b in zip(BACKGROUND_TOP, BACKGROUND_BOTTOM, strict=True)
                ),
                255,
            ),
        )
    gradient = gradient.resize((big, big))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle((s(8), s(8), s(248), s(248)), radius=s(48), fill=255)
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    image.paste(gradient, (0, 0), mask)

    draw = ImageDraw.Draw(image)
    for (x, y), color in TILES:
        draw.rounded_rectangle(
            (s(x), s(y), s(x + TILE), s(y + TILE)), radius=s(TILE_RADIUS), fill=color
        )
    cx, cy = BADGE_CENTER
    draw.ellipse(
        (s(cx - BADGE_RADIUS), s(cy - BADGE_RADIUS), s(cx + BADGE_RADIUS), s(cy + BADGE_RADIUS)),
        fill="#ffffff",
    )
    points = [(s(x), s(y)) for x, y in CHECK]
    width = max(s(CHECK_WIDTH), 1)
    draw.line(points, fill="#31a354", width=width, joint="curve")
    for x, y in (points[0], points[-1]):  # round caps
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill="#31a354")
    return image.resize((size, size), Image.Resampling.LANCZOS)


def write_icons(out: Path) -> list[Path]:
    """Write ``out/hicolor/<N>x<N>/apps/fewshot-gui.png`` for every size; returns the paths."""
    paths = []
    for size in SIZES:
        path = out / "hicolor" / f"{size}x{size}" / "apps" / "fewshot-gui.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw_icon(size).save(path, optimize=True)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = Path(__file__).resolve().parents[1] / "resources" / "icons"
    parser.add_argument("--out", type=Path, default=default, help="icons folder (%(default)s)")
    for path in write_icons(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
