"""The one synthetic-image maker: class folders differ by class, photos and tiny images come out
as many, as large and as decodable as asked."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fewshot_gui.bench.synthetic import make_class_folders, make_photos, make_tiny_images


def _mean(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.float64).mean((0, 1))


def test_class_folders_differ_between_classes_more_than_within(tmp_path) -> None:
    made = make_class_folders(tmp_path, classes=3, per_class=4, size=(40, 30))
    assert sorted(made) == ["class000", "class001", "class002"]
    assert all(len(paths) == 4 and all(p.is_file() for p in paths) for paths in made.values())
    means = {name: np.array([_mean(p) for p in paths]) for name, paths in made.items()}
    within = max(np.linalg.norm(m - m.mean(0), axis=1).max() for m in means.values())
    centres = [m.mean(0) for m in means.values()]
    between = min(np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1 :])
    assert between > within
    again = make_class_folders(tmp_path / "again", classes=3, per_class=4, size=(40, 30))
    assert all(  # the same seed draws the same images
        (a.read_bytes() == b.read_bytes())
        for name in made
        for a, b in zip(made[name], again[name], strict=True)
    )


def test_grey_class_images_and_photos_and_tiny_images(tmp_path) -> None:
    grey = make_class_folders(tmp_path / "grey", 2, 1, size=(28, 28), mode="L")
    with Image.open(grey["class000"][0]) as image:
        assert image.mode == "L" and image.size == (28, 28)
    make_photos(tmp_path / "photos", 3, size=(50, 40))
    photos = sorted((tmp_path / "photos").glob("*.jpg"))
    assert len(photos) == 3
    with Image.open(photos[0]) as image:
        assert image.size == (50, 40)
    make_tiny_images(tmp_path / "tiny", 20, size=16)
    assert len(list((tmp_path / "tiny").rglob("*.jpg"))) == 20
