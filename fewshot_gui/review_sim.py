"""The review loop, simulated: least confident first, correct the wrong, accept the right.

A person reviews a labeled folder the way the app lets them: in the "least confident first" order,
each image is either **corrected** (the prediction was wrong: the image becomes an example of its
true class) or **accepted** with Enter (the prediction was right: the image becomes an example of
the predicted class). Either way the labeler re-labels every image, exactly as the app's worker does
(``LabelingSession.add_example``). :func:`simulate_review` replays this against the true labels and
records what each action did to the folder.

Order (``order=``):

* ``"frozen"`` (what the app does while reviewing): the folder is sorted once, least confident
  first; the reviewer walks that list, skipping images already reviewed; at its end the remaining
  unreviewed images are sorted again by their current confidences and the walk continues.
* ``"resort"``: after every action the next image is the least confident unreviewed one now.

Folder accuracy is what the user would export: the user's label for reviewed images, the prediction
for the others, over every image of the folder (examples given before labeling are not in the
folder). The run stops when the folder is clean (every label right) or after ``max_reviews``.

A *harmful flip* is an unreviewed image whose label goes from right to wrong in one action. A
labeler is anything with ``predictions()`` and ``add_example(path, label, reviewed=True) ->
Predictions`` (a review label, as the app's keys give it):
:class:`~fewshot_gui.session.LabelingSession`, or :class:`ArrayLabeler` on given embeddings (tests).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

import numpy as np

from fewshot_gui.core.types import Predictions

ORDERS = ("frozen", "resort")


class Labeler(Protocol):
    def predictions(self) -> Predictions: ...

    def add_example(self, path: str, label: str, *, reviewed: bool = False) -> Predictions: ...


@dataclass
class ReviewResult:
    """What one simulated review did; accuracies are fractions of the folder (0..1)."""

    folder_size: int
    initial_accuracy: float
    accuracies: list[float] = field(default_factory=list)  # after each action
    corrections: int = 0
    harmful_flips: int = 0
    reviews_to_clean: int | None = None  # None: not clean within the reviews allowed
    action_s: list[float] = field(default_factory=list)  # seconds per action (re-label included)
    methods: list[str] = field(default_factory=list)  # the labeler's description after each action

    @property
    def reviews(self) -> int:
        return len(self.accuracies)

    @property
    def largest_fall(self) -> float:
        """The largest drop of folder accuracy caused by one action (0 when it never fell)."""
        path = [self.initial_accuracy, *self.accuracies]
        return max([0.0, *(a - b for a, b in pairwise(path))])

    @property
    def lowest_accuracy(self) -> float:
        return min([self.initial_accuracy, *self.accuracies])

    @property
    def switches(self) -> int:
        """How often the labeler's description changed its method (auto switching)."""
        names = [m.split(":")[0] for m in self.methods]
        return sum(a != b for a, b in pairwise(names))


def _state(pred: Predictions, index: Mapping[str, int], paths: Sequence[str]) -> tuple:
    """Labels (N,) object and confidences (N,) of ``paths`` in folder order."""
    rows = np.array([index[p] for p in paths])
    labels = np.asarray(pred.labels, dtype=object)[rows]
    return labels, np.asarray(pred.confidences)[rows]


def simulate_review(
    labeler: Labeler,
    truth: Mapping[str, str],
    *,
    order: str = "frozen",
    max_reviews: int | None = None,
    describe: Any = None,
) -> ReviewResult:
    """Review the folder ``truth`` (path → true class) with ``labeler``; see the module docstring.

    ``describe``: a callable returning the labeler's method description, recorded per action.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    paths = list(truth)
    true = np.asarray([truth[p] for p in paths], dtype=object)
    pred = labeler.predictions()
    index = {p: i for i, p in enumerate(pred.paths)}
    missing = [p for p in paths if p not in index]
    if missing:
        raise ValueError(f"{len(missing)} folder images have no prediction, e.g. {missing[0]}")
    labels, conf = _state(pred, index, paths)
    reviewed = np.zeros(len(paths), bool)
    right = labels == true
    result = ReviewResult(len(paths), float(right.mean()))
    limit = len(paths) if max_reviews is None else min(max_reviews, len(paths))
    queue: list[int] = []
    while result.reviews < limit and not right.all():
        if order == "resort":
            queue = [int(np.flatnonzero(~reviewed)[np.argmin(conf[~reviewed])])]
        while queue and reviewed[queue[0]]:
            queue.pop(0)
        if not queue:  # the end of the frozen list: sort what is left by today's confidences
            todo = np.flatnonzero(~reviewed)
            queue = todo[np.argsort(conf[todo], kind="stable")].tolist()
        i = queue.pop(0)
        corrected = labels[i] != true[i]
        result.corrections += int(corrected)
        started = time.perf_counter()
        # corrected, or accepted with Enter: a review label, as the app's keys give it
        pred = labeler.add_example(paths[i], str(true[i]), reviewed=True)
        result.action_s.append(time.perf_counter() - started)
        index = {p: k for k, p in enumerate(pred.paths)}
        reviewed[i] = True
        labels, conf = _state(pred, index, paths)
        now = np.where(reviewed, True, labels == true)
        result.harmful_flips += int((right & ~now).sum())
        right = now
        result.accuracies.append(float(right.mean()))
        if describe is not None:
            result.methods.append(str(describe()))
    if right.all():
        result.reviews_to_clean = result.reviews
    return result


class ArrayLabeler:
    """A labeler on given embeddings (no images, no encoder), driving an adapter the way
    :class:`~fewshot_gui.session.LabelingSession` does: ``add_example`` re-labels everything.

    ``embeddings`` (N, D) of the folder images ``paths``; ``support`` maps example paths (folder
    images or not) to ``(embedding (D,), class)``.
    """

    def __init__(
        self,
        method: str,
        paths: Sequence[str],
        embeddings: np.ndarray,
        support: Mapping[str, tuple[np.ndarray, str]],
        **options: Any,
    ) -> None:
        from fewshot_gui.adapters.registry import create_adapter

        self.paths = list(paths)
        self.embeddings = np.asarray(embeddings, np.float32)
        self._row = {p: i for i, p in enumerate(self.paths)}
        self._support = list(support)
        self.adapter = create_adapter(method, **options)
        x = np.stack([np.asarray(v, np.float32) for v, _ in support.values()])
        self.adapter.fit(x, [c for _, c in support.values()])

    @property
    def method_description(self) -> str:
        describe = getattr(self.adapter, "describe", None)
        return str(describe()) if callable(describe) else self.adapter.name

    def predictions(self) -> Predictions:
        probs = self.adapter.predict_proba(self.embeddings)
        return Predictions.from_probabilities(self.paths, self.adapter.classes, probs)

    def add_example(self, path: str, label: str, *, reviewed: bool = False) -> Predictions:
        """``reviewed``: a review label, weighed as the session weighs it."""
        from fewshot_gui.adapters.base import REVIEWED_WEIGHT

        if path in self._support:  # relabeled: drop the old entry first, as the session does
            self.adapter.remove_example(self._support.index(path))
            self._support.remove(path)
        self._support.append(path)
        weight = REVIEWED_WEIGHT if reviewed else 1.0
        self.adapter.add_example(self.embeddings[self._row[path]], label, weight)
        return self.predictions()
