"""The support set: the examples of each class, embedded and fitted by the adapter; corrections
add or remove one example and re-label every embedded image."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fewshot_gui.adapters.base import REVIEWED_WEIGHT
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure, ImageRecord, Predictions, Progress
from fewshot_gui.data.folder import record_for
from fewshot_gui.session.prediction import FolderPrediction
from fewshot_gui.session.routing import DomainRouting


class SupportSet(DomainRouting, FolderPrediction):
    """The session's examples (a part of :class:`~fewshot_gui.session.LabelingSession`)."""

    adapter_options: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return list(self._adapter.classes) if self._adapter is not None else []

    @property
    def method_description(self) -> str:
        """The method in use, with what it decided (``auto`` names its choice and scores)."""
        describe = getattr(self._adapter, "describe", None)
        return str(describe()) if callable(describe) else self.method

    @property
    def method_reason(self) -> str:
        """What the method decided and why in one plain sentence (``auto``), else ""."""
        reason = getattr(self._adapter, "reason", None)
        return str(reason()) if callable(reason) else ""

    @property
    def support(self) -> list[tuple[str, str]]:
        """The support set as ``(path, class name)`` pairs, in the order examples were given."""
        return list(self._support)

    def set_support(
        self, examples: Mapping[str, Sequence[str | Path]], reviewed: Iterable[str | Path] = ()
    ) -> Iterator[Progress]:
        """Embed the examples of each class and fit the adapter.

        ``reviewed``: those of the paths that were labeled while reviewing (accepted or corrected
        in the app), not given as examples: see :meth:`add_example`. Examples that cannot be read
        are recorded in :attr:`failures`; classes left without a readable example are dropped.
        Raises UsageError when no class has one.
        """
        pairs: list[tuple[ImageRecord, str]] = []
        for name, paths in examples.items():
            for path in paths:
                try:
                    pairs.append((record_for(path), str(name)))
                except UsageError as error:
                    self.failures[str(path)] = FileFailure(str(path), str(error))
        records = [r for r, _ in pairs]
        yield from self._route(records)
        yield from self.embed_into_table(records, "examples")
        self._support = [(r.path, name) for r, name in pairs if self._embedded(r.path)]
        self._reviewed = review_paths(reviewed)
        self._fit()

    def _fit(self) -> None:
        from fewshot_gui.adapters.registry import create_adapter

        if not self._support:
            raise UsageError("no class has a readable example image; add at least one example")
        adapter = create_adapter(
            self.method, state=self._loaded.adapter_state, **self.adapter_options
        )
        paths = [p for p, _ in self._support]
        adapter.fit(self._vectors(paths), [c for _, c in self._support], self._example_weights())
        self._adapter = adapter
        self._open = None

    def add_example(self, path: str | Path, label: str, *, reviewed: bool = False) -> Predictions:
        """Add one example (embedding it if needed) and re-label every embedded image.

        ``reviewed``: the image was labeled while reviewing the folder (a correction, or a label
        accepted), not given as an example: the adapter takes it as any example, the folder
        refinement and the metric family's prototypes at
        :data:`~fewshot_gui.adapters.base.REVIEWED_WEIGHT` (boundary cases, not typical members).
        """
        record = record_for(path)
        if not self._embedded(record.path):
            for _progress in self.embed_into_table([record], "example"):
                pass
            if not self._embedded(record.path):
                reason = self.failures.get(record.path, FileFailure(record.path, "unreadable"))
                raise UsageError(f"cannot use {record.path} as an example: {reason.reason}")
        # A relabeled example moves class: drop its old entry first.
        self._drop_support(record.path)
        self._support.append((record.path, str(label)))
        if reviewed:
            self._reviewed.add(record.path)
        self._open = None
        if self._adapter is None:
            self._fit()
        else:  # adapters accept examples of new classes too
            self._adapter.add_example(
                self._vectors([record.path])[0], str(label), REVIEWED_WEIGHT if reviewed else 1.0
            )
        return self.predictions()

    def _example_weights(self) -> list[float]:
        """Per support entry: 1, or :data:`~fewshot_gui.adapters.base.REVIEWED_WEIGHT` for a
        review label."""
        return [REVIEWED_WEIGHT if p in self._reviewed else 1.0 for p, _ in self._support]

    def _drop_support(self, path: str) -> bool:
        for i, (p, _) in enumerate(self._support):
            if p == path:
                del self._support[i]
                self._reviewed.discard(path)
                self._open = None
                if self._adapter is not None:
                    self._adapter.remove_example(i)
                return True
        return False

    def remove_example(self, path: str | Path) -> Predictions:
        """Remove an example from the support set and re-label every embedded image."""
        target = str(Path(path).expanduser().absolute())
        if not self._drop_support(target):
            raise UsageError(f"{target} is not an example")
        if not self._support:
            self._adapter = None
        return self.predictions()


def review_paths(paths: Iterable[str | Path]) -> set[str]:
    """The absolute paths the support set records, of ``paths``."""
    return {str(Path(p).expanduser().absolute()) for p in paths}
