"""Plain data types shared by every layer (numpy only; no torch, no Qt)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

UNKNOWN = "unknown"
"""Label given to an image whose best class probability is below the unknown threshold."""
LIKELY_UNKNOWN = 0.95
"""Unknown score above which an image is "likely unknown" (``--unknown-threshold auto``: about
95 % of images of known classes score below it; see :mod:`fewshot_gui.adapters.open_set`)."""


@dataclass(frozen=True, order=True)
class ImageRecord:
    """One image file found by a scan; ``(path, size, mtime_ns, ctime_ns, inode)`` is its identity
    for caching (``ctime_ns`` changes when content is swapped in under a restored mtime)."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int = 0
    inode: int = 0

    @classmethod
    def from_stat(cls, path: str, info: os.stat_result) -> ImageRecord:
        """The record of ``path`` from its ``os.stat`` result."""
        return cls(path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


@dataclass(frozen=True)
class FileFailure:
    """A file that could not be used, with a plain reason (e.g. "truncated JPEG")."""

    path: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """How far a long job is. ``eta_s`` is None until a rate is known."""

    done: int
    total: int
    stage: str = ""
    items_per_s: float = 0.0
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class Predictions:
    """Predictions for a set of images, numpy only.

    ``probabilities`` is ``(N, C)`` over ``classes``; ``labels[i]`` is a class name or
    :data:`UNKNOWN`; ``confidences[i]`` is the top probability; ``unknown_scores[i]`` in [0, 1]
    says how unlike every class image ``i`` is (distance-based, see
    :mod:`fewshot_gui.adapters.open_set`; empty when not computed).
    """

    paths: list[str]
    classes: list[str]
    probabilities: np.ndarray
    labels: list[str] = field(default_factory=list)
    confidences: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    unknown_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @classmethod
    def from_probabilities(
        cls,
        paths: list[str],
        classes: list[str],
        probabilities: np.ndarray,
        unknown_threshold: float | None = None,
        unknown_scores: np.ndarray | None = None,
    ) -> Predictions:
        """Top class per row. ``unknown_threshold``: with ``unknown_scores`` (N,), label
        :data:`UNKNOWN` where the score is above it; without, where the top probability is below
        it."""
        probabilities = np.asarray(probabilities, dtype=np.float32).reshape(
            len(paths), len(classes)
        )
        scores = np.zeros(0, np.float32)
        if unknown_scores is not None:
            scores = np.asarray(unknown_scores, np.float32).reshape(len(paths))
        if len(paths) == 0:
            return cls(paths, classes, probabilities, [], np.zeros(0, np.float32), scores)
        best = probabilities.argmax(axis=1)
        confidences = probabilities[np.arange(len(paths)), best]
        if unknown_threshold is not None:
            if unknown_scores is not None:
                unknown = scores > unknown_threshold
            else:
                unknown = confidences < unknown_threshold
            best = np.where(unknown, len(classes), best)  # the name after the classes: UNKNOWN
        # names picked by one index (a list comprehension took 0.5 ms for 10,000 images)
        labels = np.array([*classes, UNKNOWN], dtype=object)[best].tolist()
        return cls(paths, classes, probabilities, labels, confidences, scores)
