"""Episodes for meta-training and evaluation: N-way K-shot Q-query sampling over class folders.

Layouts: flat class folders (``root/<class>/<image>``, e.g. Flowers) or two levels
(``root/<group>/<class>/<image>``, e.g. Omniglot's alphabet/character). Each class belongs to a
*group* (its alphabet; for flat folders the class itself), so splits can hold out whole alphabets.

Rotations as new classes (Omniglot's augmentation): with ``rotations=(0, 90, 180, 270)`` each
(class, rotation) pair is a class of its own. An *item* is one (image, rotation) pair; episodes
index items. Images are turned into uint8 arrays by an encoder's :class:`Preprocessing` and kept
in an :class:`ImageStore` (preloaded as one tensor, or decoded on demand with an LRU cache).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from fewshot_gui.core.errors import DecodeError, UsageError
from fewshot_gui.data.folder import scan_folder
from fewshot_gui.data.loader import load_uint8
from fewshot_gui.data.preprocess import Preprocessing


@dataclass(frozen=True)
class Episode:
    """One N-way task. ``support``/``query`` are item ids (into the dataset's items);
    ``support_y``/``query_y`` are episode labels 0..way-1; ``classes[j]`` is the dataset class
    index of episode label ``j``."""

    classes: np.ndarray  # (way,) int64
    support: np.ndarray  # (way*shot,) int64
    support_y: np.ndarray  # (way*shot,) int64
    query: np.ndarray  # (way*query,) int64
    query_y: np.ndarray  # (way*query,) int64


class ClassFolderDataset:
    """Images grouped into classes (and groups), with optional rotation classes.

    ``classes_at_depth``: 1 = each top-level sub-folder is a class (deeper images belong to it);
    2 = each second-level folder is a class and its parent is its group; ``"auto"`` picks 2 when no
    image lies directly in a top-level sub-folder but some lie one level deeper.

    Attributes: ``paths`` (unique image files), ``base_classes`` (names), ``base_groups``,
    ``base_images`` (image ids per base class); ``classes``/``groups`` (virtual classes, one per
    base class × rotation, named ``"name"`` or ``"name@90"``); item arrays ``item_image``,
    ``item_rotation``, ``item_class``; ``class_items[c]`` (item ids of class ``c``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        classes_at_depth: str | int = "auto",
        rotations: Sequence[int] = (0,),
        *,
        min_images: int = 1,
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        records = scan_folder(self.root)
        rel = [os.path.relpath(r.path, self.root).split(os.sep) for r in records]
        depth = _pick_depth(rel, classes_at_depth)
        by_class: dict[tuple[str, str], list[str]] = {}
        for parts, record in zip(rel, records, strict=True):
            if len(parts) <= depth:
                continue  # images above the class level belong to no class
            group, name = (parts[0], parts[0]) if depth == 1 else (parts[0], "/".join(parts[:2]))
            by_class.setdefault((name, group), []).append(record.path)
        kept = sorted(k for k, v in by_class.items() if len(v) >= min_images)
        if not kept:
            raise UsageError(f"no class folder with images found in {self.root}")
        self.depth = depth
        self.paths: list[str] = []
        self.base_classes: list[str] = []
        self.base_groups: list[str] = []
        self.base_images: list[np.ndarray] = []
        for name, group in kept:
            start = len(self.paths)
            self.paths.extend(by_class[(name, group)])
            self.base_classes.append(name)
            self.base_groups.append(group)
            self.base_images.append(np.arange(start, len(self.paths), dtype=np.int64))
        self._set_view(range(len(kept)), rotations)

    def _set_view(self, base_ids: Sequence[int], rotations: Sequence[int]) -> None:
        rotations = tuple(int(r) % 360 for r in rotations) or (0,)
        if any(r % 90 for r in rotations) or len(set(rotations)) != len(rotations):
            raise UsageError(f"rotations must be distinct multiples of 90 degrees, got {rotations}")
        self.rotations = rotations
        self.base_ids = np.asarray(list(base_ids), dtype=np.int64)
        self.classes: list[str] = []
        self.groups: list[str] = []
        self.class_items: list[np.ndarray] = []
        images, rots, owners = [], [], []
        count = 0
        for b in self.base_ids:
            for r in rotations:
                ids = self.base_images[b]
                self.classes.append(self.base_classes[b] + (f"@{r}" if r else ""))
                self.groups.append(self.base_groups[b])
                self.class_items.append(np.arange(count, count + len(ids), dtype=np.int64))
                images.append(ids)
                rots.append(np.full(len(ids), r, dtype=np.int64))
                owners.append(np.full(len(ids), len(self.classes) - 1, dtype=np.int64))
                count += len(ids)
        empty = np.zeros(0, np.int64)
        self.item_image = np.concatenate(images) if images else empty
        self.item_rotation = np.concatenate(rots) if rots else empty
        self.item_class = np.concatenate(owners) if owners else empty

    def subset(
        self, base_classes: Sequence[str], rotations: Sequence[int] | None = None
    ) -> ClassFolderDataset:
        """A view on some base classes (by name), sharing ``paths``; rotations default to ours."""
        index = {name: i for i, name in enumerate(self.base_classes)}
        missing = [c for c in base_classes if c not in index]
        if missing:
            raise UsageError(f"classes not found in {self.root}: {', '.join(missing[:5])}")
        view = object.__new__(ClassFolderDataset)
        view.__dict__.update({k: v for k, v in self.__dict__.items()})
        view._set_view(sorted(index[c] for c in base_classes), rotations or self.rotations)
        return view

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def used_base_classes(self) -> list[str]:
        return [self.base_classes[b] for b in self.base_ids]

    @property
    def used_groups(self) -> list[str]:
        return sorted({self.base_groups[b] for b in self.base_ids})

    @property
    def used_images(self) -> np.ndarray:
        """Ids (into ``paths``) of the images this view uses, sorted."""
        ids = [self.base_images[b] for b in self.base_ids]
        return np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int64)


def _pick_depth(rel: list[list[str]], wanted: str | int) -> int:
    if wanted in (1, 2, "1", "2"):
        return int(wanted)
    if wanted != "auto":
        raise UsageError(f"classes_at_depth must be 'auto', 1 or 2, got {wanted!r}")
    direct = sum(len(p) == 2 for p in rel)
    deeper = sum(len(p) >= 3 for p in rel)
    return 2 if deeper and not direct else 1


def split_classes(
    dataset: ClassFolderDataset,
    val_fraction: float,
    seed: int = 0,
    by_group: bool = True,
    train_rotations: Sequence[int] | None = None,
    val_rotations: Sequence[int] = (0,),
) -> tuple[ClassFolderDataset, ClassFolderDataset]:
    """Deterministic train/validation split by base class, or by group (alphabet) when
    ``by_group`` and the dataset has groups. Both sides are non-empty when possible.
    Validation uses ``val_rotations`` (unrotated by default); training keeps the dataset's."""
    names = dataset.used_base_classes
    groups = [dataset.base_groups[b] for b in dataset.base_ids]
    units = sorted(set(groups)) if by_group and dataset.depth == 2 else sorted(names)
    rng = np.random.default_rng(seed)
    order = [units[i] for i in rng.permutation(len(units))]
    n_val = min(len(units) - 1, max(1, round(val_fraction * len(units)))) if val_fraction else 0
    val_units = set(order[:n_val])
    key = groups if by_group and dataset.depth == 2 else names
    val = [n for n, k in zip(names, key, strict=True) if k in val_units]
    train = [n for n, k in zip(names, key, strict=True) if k not in val_units]
    return dataset.subset(train, train_rotations), dataset.subset(val, val_rotations)


class EpisodeSampler:
    """N-way K-shot Q-query episodes over a dataset; episode ``i`` depends only on ``(seed, i)``,
    so a resumed run sees the same episodes. Classes with fewer than ``shot + query`` items
    are never drawn."""

    def __init__(
        self, dataset: ClassFolderDataset, way: int, shot: int, query: int, seed: int = 0
    ) -> None:
        if way < 1 or shot < 1 or query < 0:
            raise UsageError("way and shot must be at least 1 and query at least 0")
        self.dataset, self.way, self.shot, self.query, self.seed = dataset, way, shot, query, seed
        self.eligible = np.asarray(
            [c for c, items in enumerate(dataset.class_items) if len(items) >= shot + query],
            dtype=np.int64,
        )
        if len(self.eligible) < way:
            raise UsageError(
                f"{way}-way {shot}-shot {query}-query needs {way} classes with at least "
                f"{shot + query} images each; {dataset.root} has {len(self.eligible)}"
            )

    def episode(self, index: int) -> Episode:
        rng = np.random.default_rng([self.seed, index])
        classes = rng.choice(self.eligible, self.way, replace=False)
        support, query = [], []
        for items in (self.dataset.class_items[c] for c in classes):
            picked = rng.choice(items, self.shot + self.query, replace=False)
            support.append(picked[: self.shot])
            query.append(picked[self.shot :])
        labels = np.arange(self.way, dtype=np.int64)
        return Episode(
            classes.astype(np.int64),
            np.concatenate(support),
            np.repeat(labels, self.shot),
            np.concatenate(query) if query else np.zeros(0, np.int64),
            np.repeat(labels, self.query),
        )

    def __iter__(self) -> Iterator[Episode]:
        index = 0
        while True:
            yield self.episode(index)
            index += 1


def _decode_uint8(path: str, preprocessing: Preprocessing) -> np.ndarray:
    """One file → ``(C, crop, crop)`` uint8; raises :class:`DecodeError` with a plain reason."""
    return load_uint8(path, preprocessing)


class ImageStore:
    """uint8 images of a dataset's items, ready for an encoder.

    ``preload=True`` decodes every image the dataset uses once into one ``(N, C, H, W)`` uint8
    tensor (Omniglot at 28×28: 15 MB); otherwise images are decoded when first asked for and kept
    in an LRU cache of ``cache_mb``. Unreadable images raise :class:`UsageError` naming the file.
    """

    def __init__(
        self,
        dataset: ClassFolderDataset,
        preprocessing: Preprocessing,
        *,
        preload: bool = True,
        num_workers: int = 2,
        cache_mb: int = 1024,
    ) -> None:
        self.dataset, self.preprocessing = dataset, preprocessing
        self.num_workers = max(1, num_workers)
        self._row = np.full(len(dataset.paths), -1, dtype=np.int64)
        self._images: torch.Tensor | None = None
        self._lru: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._lru_limit = max(1, int(cache_mb * 2**20 / max(1, _bytes_per_image(preprocessing))))
        if preload:
            ids = dataset.used_images
            self._row[ids] = np.arange(len(ids))
            self._images = torch.from_numpy(np.stack(self._decode_many(ids))) if len(ids) else None

    def _decode_many(self, image_ids: Sequence[int]) -> list[np.ndarray]:
        paths = [self.dataset.paths[i] for i in image_ids]
        decode = lambda p: _decode_uint8(p, self.preprocessing)  # noqa: E731
        try:
            with ThreadPoolExecutor(self.num_workers) as pool:
                return list(pool.map(decode, paths, chunksize=64))
        except DecodeError as err:
            raise UsageError(f"cannot use an image for meta-training: {err}") from None

    def images(self, image_ids: np.ndarray) -> torch.Tensor:
        """``(n,)`` image ids → ``(n, C, H, W)`` uint8 (not rotated)."""
        if self._images is not None and (self._row[image_ids] >= 0).all():
            return self._images[torch.from_numpy(self._row[image_ids])]
        missing = [int(i) for i in dict.fromkeys(image_ids.tolist()) if int(i) not in self._lru]
        for i, array in zip(missing, self._decode_many(missing), strict=True):
            self._lru[i] = torch.from_numpy(array if array.flags.writeable else array.copy())
        out = []
        for i in image_ids.tolist():
            self._lru.move_to_end(i)
            out.append(self._lru[i])
        while len(self._lru) > max(self._lru_limit, len(image_ids)):
            self._lru.popitem(last=False)
        return torch.stack(out)

    def items(self, item_ids: np.ndarray, view: ClassFolderDataset | None = None) -> torch.Tensor:
        """``(n,)`` item ids of ``view`` (a subset sharing our paths; default: our dataset) →
        ``(n, C, H, W)`` uint8, each rotated by its item's rotation."""
        view = view or self.dataset
        item_ids = np.asarray(item_ids, dtype=np.int64)
        batch = self.images(view.item_image[item_ids])
        rotations = view.item_rotation[item_ids]
        if not rotations.any():
            return batch
        batch = batch.clone()
        for r in np.unique(rotations):
            if r:
                sel = torch.from_numpy(np.nonzero(rotations == r)[0])
                batch[sel] = torch.rot90(batch[sel], k=int(r) // 90, dims=(2, 3))
        return batch


def _bytes_per_image(preprocessing: Preprocessing) -> int:
    return preprocessing.channels * preprocessing.crop * preprocessing.crop
