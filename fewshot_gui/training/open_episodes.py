"""Episodes like real folders, for ``evaluate --imbalance R --distractors N``.

A real folder is imbalanced (some classes have many images, others few) and holds images of no
class. :func:`open_episode` draws ``way`` classes with ``shot`` examples each, like
:class:`~fewshot_gui.data.episodes.EpisodeSampler`, but class ``c`` gets ``round(query * R^-u_c)``
queries (``u_c`` uniform in [0, 1], at least one: class sizes differ by up to ``R``), and
``distractors`` more images from classes *not* in the episode, labeled ``-1`` (counted in no
accuracy; a transductive method sees them among the queries). Episode ``i`` depends only on
``(seed, i)``, so the same episodes are drawn with and without refinement.
"""

from __future__ import annotations

import numpy as np

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.episodes import ClassFolderDataset, Episode


def limit_images(dataset: ClassFolderDataset, per_class: int) -> ClassFolderDataset:
    """A view on ``dataset`` keeping the first ``per_class`` images (by path order) of each class
    (fewer images to embed; evaluation on the same classes)."""
    view = object.__new__(ClassFolderDataset)
    view.__dict__.update(dataset.__dict__)
    view.base_images = [np.sort(ids)[:per_class] for ids in dataset.base_images]
    view._set_view(dataset.base_ids, dataset.rotations)
    return view


def open_episode(
    dataset: ClassFolderDataset,
    index: int,
    way: int,
    shot: int,
    query: int,
    imbalance: float = 1.0,
    distractors: int = 0,
    seed: int = 0,
) -> Episode:
    """Episode ``index``: imbalanced queries and distractors (see the module docstring)."""
    if imbalance < 1:
        raise UsageError("--imbalance is a ratio of class sizes, at least 1")
    sizes = np.asarray([len(items) for items in dataset.class_items])
    eligible = np.flatnonzero(sizes >= shot + query)
    if len(eligible) < way:
        raise UsageError(
            f"{way}-way {shot}-shot {query}-query needs {way} classes with at least "
            f"{shot + query} images each; {dataset.root} has {len(eligible)}"
        )
    rng = np.random.default_rng([seed, index, 15])
    classes = rng.choice(eligible, way, replace=False)
    support, queries, query_y = [], [], []
    for k, c in enumerate(classes):
        n = max(1, round(query * imbalance ** -rng.uniform()))
        picked = rng.choice(dataset.class_items[c], shot + n, replace=False)
        support.append(picked[:shot])
        queries.append(picked[shot:])
        query_y.append(np.full(n, k, np.int64))
    if distractors:
        others = np.setdiff1d(np.arange(len(dataset.class_items)), classes)
        pool = np.concatenate([dataset.class_items[c] for c in others]) if len(others) else []
        if len(pool) < distractors:
            raise UsageError(
                f"--distractors {distractors}: only {len(pool)} images of other classes"
            )
        queries.append(rng.choice(pool, distractors, replace=False))
        query_y.append(np.full(distractors, -1, np.int64))
    return Episode(
        classes.astype(np.int64),
        np.concatenate(support),
        np.repeat(np.arange(way, dtype=np.int64), shot),
        np.concatenate(queries),
        np.concatenate(query_y),
    )
