"""Episodes over class folders: layouts, sampling, splits, rotations, the image store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.episodes import (
    ClassFolderDataset,
    EpisodeSampler,
    ImageStore,
    split_classes,
)
from fewshot_gui.data.preprocess import Preprocessing

GRAY = Preprocessing(resize=8, crop=8, mean=(0.5,), std=(0.5,), channels=1)


def make_flat(root: Path, classes: int = 8, images: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        for i in range(images):
            array = np.full((8, 8, 3), 40 * (c % 6), np.uint8)
            array[c % 8, :] = 255
            array = np.clip(array + rng.integers(0, 20, array.shape), 0, 255).astype(np.uint8)
            path = root / f"class{c}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path)
    return root


def make_nested(root: Path, alphabets: int = 4, characters: int = 3, images: int = 6) -> Path:
    for a in range(alphabets):
        for c in range(characters):
            for i in range(images):
                array = np.zeros((8, 8), np.uint8)
                array[a, : c + 2] = 255  # asymmetric: rotations differ
                array[7 - i % 3, 0] = 128
                path = root / f"alpha{a}" / f"char{c}" / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array, "L").save(path)
    return root


def test_layouts_are_detected(tmp_path: Path) -> None:
    flat = ClassFolderDataset(make_flat(tmp_path / "flat"))
    assert flat.depth == 1 and flat.num_classes == 8 and len(flat.paths) == 80
    assert flat.groups == flat.classes
    nested = ClassFolderDataset(make_nested(tmp_path / "nested"))
    assert nested.depth == 2 and nested.num_classes == 12
    assert nested.classes[0] == "alpha0/char0" and nested.groups[0] == "alpha0"
    as_flat = ClassFolderDataset(tmp_path / "nested", classes_at_depth=1)
    assert as_flat.num_classes == 4 and len(as_flat.class_items[0]) == 18


def test_sampler_is_correct_and_deterministic(tmp_path: Path) -> None:
    dataset = ClassFolderDataset(make_flat(tmp_path))
    sampler = EpisodeSampler(dataset, way=4, shot=2, query=3, seed=7)
    episode = sampler.episode(5)
    assert episode.support.shape == (8,) and episode.query.shape == (12,)
    assert list(episode.support_y) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(set(episode.classes.tolist())) == 4
    assert not set(episode.support) & set(episode.query)
    for ids, labels in ((episode.support, episode.support_y), (episode.query, episode.query_y)):
        assert (dataset.item_class[ids] == episode.classes[labels]).all()
    again = EpisodeSampler(dataset, 4, 2, 3, seed=7).episode(5)
    assert (again.support == episode.support).all() and (again.query == episode.query).all()
    other = [EpisodeSampler(dataset, 4, 2, 3, seed=8).episode(5), sampler.episode(6)]
    assert any((o.support != episode.support).any() for o in other)


def test_sampler_refuses_impossible_tasks(tmp_path: Path) -> None:
    dataset = ClassFolderDataset(make_flat(tmp_path, classes=3, images=4))
    with pytest.raises(UsageError, match="needs 4 classes"):
        EpisodeSampler(dataset, way=4, shot=1, query=1)
    with pytest.raises(UsageError):
        EpisodeSampler(dataset, way=2, shot=3, query=2)  # 5 > 4 images per class


def test_split_is_disjoint_by_class_and_by_alphabet(tmp_path: Path) -> None:
    flat = ClassFolderDataset(make_flat(tmp_path / "flat"))
    train, val = split_classes(flat, 0.25, seed=1)
    assert len(val.used_base_classes) == 2 and len(train.used_base_classes) == 6
    assert not set(train.used_base_classes) & set(val.used_base_classes)
    again_train, _ = split_classes(flat, 0.25, seed=1)
    assert again_train.used_base_classes == train.used_base_classes
    nested = ClassFolderDataset(make_nested(tmp_path / "nested"))
    train, val = split_classes(nested, 0.25, seed=0)
    assert len(val.used_groups) == 1 and len(train.used_groups) == 3
    assert not set(train.used_groups) & set(val.used_groups)
    assert len(val.used_base_classes) == 3  # all characters of the held-out alphabet


def test_rotations_are_new_classes(tmp_path: Path) -> None:
    dataset = ClassFolderDataset(make_nested(tmp_path), rotations=(0, 90, 180, 270))
    assert dataset.num_classes == 48 and "alpha0/char0@90" in dataset.classes
    train, val = split_classes(dataset, 0.25, seed=0, train_rotations=(0, 90, 180, 270))
    assert train.num_classes == 36 and val.num_classes == 3  # validation unrotated
    store = ImageStore(dataset, GRAY, preload=True, num_workers=1)
    base = dataset.class_items[0][0]
    turned = dataset.class_items[1][0]  # same image, rotated by 90
    assert dataset.item_image[base] == dataset.item_image[turned]
    images = store.items(np.array([base, turned]))
    assert torch.equal(torch.rot90(images[0], 1, dims=(1, 2)), images[1])
    assert not torch.equal(images[0], images[1])


def test_store_preloaded_equals_lazy(tmp_path: Path) -> None:
    dataset = ClassFolderDataset(make_nested(tmp_path))
    ids = np.array([3, 0, 7, 3])
    eager = ImageStore(dataset, GRAY, preload=True, num_workers=1).items(ids)
    lazy = ImageStore(dataset, GRAY, preload=False, cache_mb=1).items(ids)
    assert eager.shape == (4, 1, 8, 8) and eager.dtype == torch.uint8
    assert torch.equal(eager, lazy)
