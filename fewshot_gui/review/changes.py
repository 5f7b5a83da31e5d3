"""What the last review action changed: labels compared before the action and after its re-label,
and the review counter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from fewshot_gui.review.constants import PENDING
from fewshot_gui.review.events import ReviewCounts


class ChangesMixin:
    """The pending action and :attr:`last_changed`; part of :class:`ReviewModel`."""

    paths: list[str]
    index_of: dict[str, int]
    code_names: list[str]
    codes: np.ndarray
    failed: dict[int, str]
    order: np.ndarray
    last_changed: np.ndarray  # (K,) sorted base indices the last action changed
    _was: np.ndarray  # (N,) what each image showed before the last action
    finished_actions: int
    _before: np.ndarray | None  # display codes when the pending action began
    _acted: set[str]  # paths the pending action labeled
    _awaiting: int  # re-labels the pending action still waits for
    rows_changed: Any
    review_changed: Any

    def _begin_action(self, paths: Iterable[str]) -> None:
        """Remember what every image shows, to tell what this action (and its re-label) changed."""
        if self._before is None:
            self._before = self.display_codes()
            self._acted = set()
        self._acted.update(paths)

    def expect_relabel(self) -> None:
        """The pending action was sent to the session: wait for its re-label before comparing."""
        if self._before is not None:
            self._awaiting += 1

    def _relabeled(self) -> None:
        """A full re-label arrived: the pending action is done once none is awaited."""
        if self._before is not None:
            self._awaiting = max(0, self._awaiting - 1)
            if not self._awaiting:
                self.finish_action()

    def finish_action(self) -> None:
        """Compare what images show now with before the pending action: :attr:`last_changed`."""
        before, self._before = self._before, None
        if before is None:
            return
        after = self.display_codes()
        n = min(len(before), len(after))
        changed = np.flatnonzero((before[:n] != after[:n]) & (before[:n] != PENDING))
        acted = {self.index_of[p] for p in self._acted if p in self.index_of}
        if acted:
            mine = np.zeros(len(after), bool)
            mine[list(acted)] = True
            changed = changed[~mine[changed]]
        previous, self.last_changed = self.last_changed, changed.astype(np.int64)
        self._was = before
        self._acted, self._awaiting = set(), 0
        self.finished_actions += 1
        self.rows_changed.emit(np.concatenate([previous, self.last_changed]))  # badges move
        self.review_changed.emit()

    def forget_action(self) -> None:
        """A new labeling run starts: no pending action waits for a re-label any more."""
        self._before, self._acted, self._awaiting = None, set(), 0

    def was_label(self, i: int) -> str:
        """The label image ``i`` showed before the last action changed it ("" if it did not)."""
        k = int(np.searchsorted(self.last_changed, i))  # last_changed is sorted
        if i >= len(self._was) or k >= len(self.last_changed) or self.last_changed[k] != i:
            return ""
        code = int(self._was[i])
        return "" if code == PENDING else self.code_names[code]

    def changed_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.paths), bool)
        mask[self.last_changed[self.last_changed < len(mask)]] = True
        return mask

    def todo_mask(self, user: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` bool: images labeled by the model only (``user``: :meth:`user_mask`)."""
        todo = ~(self.user_mask() if user is None else user) & (self.codes != PENDING)
        if self.failed:
            todo[list(self.failed)] = False
        return todo

    def counts(self) -> ReviewCounts:
        """Reviewed (user-labeled images), remaining in the view, changed by the last action."""
        user = self.user_mask()
        todo = self.todo_mask(user)
        return ReviewCounts(int(user.sum()), int(todo[self.order].sum()), len(self.last_changed))

    if TYPE_CHECKING:  # the other parts of ReviewModel

        def display_codes(self) -> np.ndarray: ...
        def user_mask(self) -> np.ndarray: ...
