"""Make the Flowers split used for the shipped ``photos`` encoder (see resources/README.md).

Classes are sorted by name; every fourth (index % 4 == 3) is held out for evaluation and never
trained on (``resources/flowers_heldout_classes.txt``); the first 32 images (sorted) of each other
class are copied into ``OUT/flowers_train`` and the held-out classes are linked into
``OUT/flowers_heldout``. The source folder is never modified.

    python benchmarks/make_flowers_split.py ../shared/datasets/flowers102 /tmp/data
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(source: str, out: str, per_class: int = 32) -> None:
    classes = sorted(p.name for p in Path(source).iterdir() if p.is_dir())
    train_dir, held_dir = Path(out) / "flowers_train", Path(out) / "flowers_heldout"
    held_dir.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(classes):
        if index % 4 == 3:
            link = held_dir / name
            if not link.exists():
                link.symlink_to(Path(source, name).resolve(), target_is_directory=True)
            continue
        (train_dir / name).mkdir(parents=True, exist_ok=True)
        for image in sorted(Path(source, name).iterdir())[:per_class]:
            shutil.copy2(image, train_dir / name / image.name)
    print(
        f"{train_dir}: {len(classes) - len(list(held_dir.iterdir()))} classes; "
        f"{held_dir}: {len(list(held_dir.iterdir()))} held-out classes"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
