"""``evaluate --transductive --imbalance R --distractors N --max-per-class N``: folder-like
episodes (imbalanced queries, images of no class) with and without refinement, on tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from imagefactory import make_image
from test_evaluate import checkpoint  # noqa: F401  (the fixture: a small Conv-4 checkpoint)

from fewshot_gui.data.episodes import ClassFolderDataset
from fewshot_gui.training.evaluate import EvalConfig, run_evaluation
from fewshot_gui.training.open_episodes import limit_images, open_episode


def _folder(root: Path, classes: int = 5, per_class: int = 8) -> Path:
    for c in range(classes):
        for i in range(per_class):
            color = ((50 * c) % 256, (60 + 12 * i) % 256, (220 - 40 * c) % 256)
            make_image(root / f"c{c}" / f"{i}.png", size=(20, 18), color=color)
    return root


def test_open_episodes_are_imbalanced_with_distractors_and_repeatable(tmp_path: Path) -> None:
    data = limit_images(ClassFolderDataset(_folder(tmp_path / "d", per_class=8)), 7)
    assert all(len(items) == 7 for items in data.class_items)
    episode = open_episode(data, 3, way=3, shot=1, query=6, imbalance=6, distractors=4)
    sizes = np.bincount(episode.query_y[episode.query_y >= 0], minlength=3)
    assert (episode.query_y == -1).sum() == 4 and sizes.min() >= 1 and sizes.max() <= 6
    distractor_classes = set(data.item_class[episode.query[episode.query_y == -1]].tolist())
    assert not distractor_classes & set(episode.classes.tolist())
    again = open_episode(data, 3, way=3, shot=1, query=6, imbalance=6, distractors=4)
    assert (again.query == episode.query).all()


def test_evaluate_with_and_without_refinement(tmp_path: Path, checkpoint: Path) -> None:  # noqa: F811
    root = _folder(tmp_path / "data")
    results = {}
    for transductive in (False, True):
        config = EvalConfig(
            data_dir=str(root),
            encoder=str(checkpoint),
            way=3,
            shot=1,
            query=5,
            episodes=4,
            split="all",
            device="cpu",
            use_cache=False,
            transductive=transductive,
            imbalance=5,
            distractors=3,
            max_per_class=7,
        )
        results[transductive] = run_evaluation(config)
    for result in results.values():
        assert 0 <= result["accuracy"] <= 1 and result["distractors"] == 3
    assert results[True]["transductive"] and not results[False]["transductive"]
