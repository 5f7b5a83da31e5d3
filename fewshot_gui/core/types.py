"""Plain data types shared by every layer (numpy only; no torch, no Qt)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

UNKNOWN = "unknown"
"""Label given to an image whose best class probability is below the unknown threshold."""


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
    :data:`UNKNOWN`; ``confidences[i]`` is the top probability.
    """

    paths: list[str]
    classes: list[str]
    probabilities: np.ndarray
    labels: list[str] = field(default_factory=list)
    confidences: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @classmethod
    def from_probabilities(
        cls,
        paths: list[str],
        classes: list[str],
        probabilities: np.ndarray,
        unknown_threshold: float | None = None,
    ) -> Predictions:
        probabilities = np.asarray(probabilities, dtype=np.float32).reshape(
            len(paths), len(classes)
        )
        if len(paths) == 0:
            return cls(paths, classes, probabilities, [], np.zeros(0, np.float32))
        best = probabilities.argmax(axis=1)
        confidences = probabilities[np.arange(len(paths)), best]
        labels = [classes[b] for b in best]
        if unknown_threshold is not None:
            labels = [
                UNKNOWN if c < unknown_threshold else lab
                for lab, c in zip(labels, confidences, strict=True)
            ]
        return cls(paths, classes, probabilities, labels, confidences)
