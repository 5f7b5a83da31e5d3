"""The selection and the embedding plot's point ↔ image map."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from fewshot_gui.data.project import ClassInfo
from fewshot_gui.review.images import ImageTable


class PointsMixin:
    """``selection`` (base indices) and ``point_base`` (plot point → base index, -1 without an
    image); part of :class:`ReviewModel`."""

    classes: list[ClassInfo]
    images: ImageTable
    paths: list[str]
    index_of: dict[str, int]
    code_names: list[str]
    codes: np.ndarray
    selection: np.ndarray
    point_paths: list[str]
    point_base: np.ndarray
    _points_found: bool
    selection_changed: Any
    points_changed: Any

    def select(self, base: Sequence[int] | np.ndarray, source: str = "") -> None:
        """Select images by base index; ``source`` ("grid", "plot", …) lets views skip echoes."""
        base = np.asarray(base, np.int64)
        increasing = len(base) < 2 or bool((base[1:] > base[:-1]).all())
        self.selection = base.copy() if increasing else np.unique(base)  # a lasso: sorted
        self.selection_changed.emit(self.selection, source)

    def select_points(self, points: Sequence[int] | np.ndarray, source: str = "plot") -> None:
        """Select the images of plot points."""
        self.select(self.base_of_points(points), source)

    def set_points(self, paths: Sequence[str]) -> None:
        """The plot shows these images (embedded so far), point ``k`` being ``paths[k]``."""
        paths = list(paths)
        m = len(self.point_paths)
        if m <= len(paths) and paths[:m] == self.point_paths:  # grew: keep the known points
            self.point_base = np.concatenate(
                [self.point_base, np.full(len(paths) - m, -1, np.int64)]
            )
        else:
            self.point_base = np.zeros(0, np.int64)
        self.point_paths = paths
        self._map_points()
        self.points_changed.emit()

    def _map_points(self) -> bool:
        """Point → base index; only points without an image are looked up again. True when a
        point found its image (embedded before its prediction arrived)."""
        if len(self.point_base) != len(self.point_paths) or not self.paths:
            self.point_base = np.full(len(self.point_paths), -1, np.int64)
        missing = np.flatnonzero(self.point_base < 0)
        if not len(missing) or not self.paths:
            return False
        if len(missing) == len(self.point_paths) and self.images.is_prefix(self.point_paths):
            base = np.arange(len(missing), dtype=np.int64)  # the folder's first images, in order
        else:  # C-level lookups (a million points: a fraction of a second)
            paths = self.point_paths
            wanted = paths if len(missing) == len(paths) else [paths[k] for k in missing.tolist()]
            base = np.fromiter(map(self.index_of.get, wanted, repeat(-1)), np.int64, len(missing))
        self.point_base[missing] = base
        found = bool((base >= 0).any())
        self._points_found = self._points_found or found
        return found

    def base_of_points(self, points: Sequence[int] | np.ndarray) -> np.ndarray:
        """Base indices of plot points (points without an image dropped)."""
        base = self.point_base[np.asarray(points, np.int64)]
        return base[base >= 0]

    def points_of_base(self, base: Sequence[int] | np.ndarray) -> np.ndarray:
        """Plot points of base indices (images without a point dropped)."""
        chosen = np.zeros(len(self.paths) + 1, bool)
        chosen[np.asarray(base, np.int64)] = True
        return np.flatnonzero(chosen[self.point_base])  # point_base -1 reads the False pad

    def point_colors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(class index (P,) into :meth:`names`, -1 unlabeled; user-labeled (P,) bool)``."""
        names = [c.name for c in self.classes]
        code_to_class = np.array(
            [names.index(n) if n in names else -1 for n in self.code_names] + [-1], np.int64
        )
        base = self.point_base
        valid = (base >= 0) & (base < len(self.codes))
        codes = np.full(len(base), -1, np.int64)
        codes[valid] = self.display_codes()[base[valid]]
        star = np.zeros(len(base), bool)
        star[valid] = self.user_mask()[base[valid]]
        return code_to_class[codes], star

    if TYPE_CHECKING:  # the other parts of ReviewModel

        def display_codes(self) -> np.ndarray: ...
        def user_mask(self) -> np.ndarray: ...
