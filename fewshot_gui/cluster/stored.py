"""A :class:`~fewshot_gui.session.LabelingSession` over a result's stored embeddings.

Reviewing a cluster run re-labels with the session's own code (support set, adapter fit, the
embedding table and its re-label path), but nothing is decoded and no encoder is loaded: the
embeddings are the run's (``--embeddings``), the support set and the checkpoint's adapter state
come from the result folder. Memory: the session's table holds float32, ``N × D × 4`` bytes
(1,000,000 × 1280-d: 5.1 GB; × 256-d: 1 GB).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from fewshot_gui.adapters.base import REVIEWED_WEIGHT
from fewshot_gui.cluster.result import LabelingResult
from fewshot_gui.cluster.shards import ADAPTER_FILE
from fewshot_gui.core.embedding_table import EmbeddingTable
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure, Predictions, Progress
from fewshot_gui.session import LabelingSession

ADD_ROWS = 100_000
"""Stored embeddings joining the session's table per call (bounds the float32 copy)."""


class StoredSession(LabelingSession):
    """The session of a labeling result: ``predictions()`` equals the run's labels; corrections
    (``add_example`` / ``remove_example`` of any stored image) re-label every image."""

    def __init__(self, result: LabelingResult, embeddings: np.ndarray | None = None) -> None:
        info = result.info
        super().__init__(
            encoder=info.encoder,
            method=info.method,
            device="cpu",
            unknown_threshold=info.unknown_threshold,
            adapter_options=info.adapter_options,
            use_cache=False,
        )
        self._routed = True  # the run's domain gate chose info.encoder already
        self._prior_fits, self.transductive = info.prior_fits, info.transductive  # and these
        self.encoder_note = info.encoder_note
        self._info, self._root = info, result.root  # not the result's rows: the table has them
        self.load()
        assert self._table is not None
        pairs, support = result.support()
        self._table.add([p for p, _ in pairs], support)
        vectors = result.embeddings() if embeddings is None else embeddings
        ok = np.flatnonzero(~result.failed_mask())
        paths = [str(p) for p in result.paths[ok]]
        for start in range(0, len(ok), ADD_ROWS):  # float32 copies of a slice at a time
            part = ok[start : start + ADD_ROWS]
            self._table.add(paths[start : start + ADD_ROWS], vectors[part])
        del vectors
        self._labeled, self._labeled_set = paths, set(paths)
        self._support = [(p, c) for p, c in pairs]
        self._fit()

    def load(self) -> None:
        """No encoder: the table, and the checkpoint's adapter state the run stored."""
        if self._loaded is not None:
            return
        info = self._info
        state = _adapter_state(self._root / ADAPTER_FILE)
        spec = SimpleNamespace(name=info.encoder, embed_dim=info.embed_dim)
        self._loaded = SimpleNamespace(spec=spec, adapter_state=state, metadata={}, model=None)
        self._plan = SimpleNamespace(name="stored embeddings (no encoder)", device=None)
        self._table = EmbeddingTable(info.embed_dim)

    @property
    def encoder_id(self) -> str:
        return self._info.encoder_id

    def add_example(self, path: str | Path, label: str, *, reviewed: bool = False) -> Predictions:
        """Make a stored image an example of ``label`` and re-label every image (its file need
        not be on this machine: only its stored embedding is used)."""
        path = str(path)
        if not self._embedded(path):
            raise UsageError(f"cannot use {path} as an example: it has no stored embedding")
        # as LabelingSession.add_example, without its file check (record_for): only the stored
        # embedding is used, so the file need not be on this machine
        self._drop_support(path)
        self._support.append((path, str(label)))
        if reviewed:
            self._reviewed.add(path)
        self._open = None  # the session's open-set state follows its support set
        if self._adapter is None:
            self._fit()
        else:
            weight = REVIEWED_WEIGHT if reviewed else 1.0
            self._adapter.add_example(self._vectors([path])[0], str(label), weight)
        return self.predictions()

    def set_support(
        self, examples: Mapping[str, Sequence[str | Path]], reviewed: Iterable[str | Path] = ()
    ) -> Iterator[Progress]:
        """Fit the adapter to ``examples`` (each must have a stored embedding; others are listed
        in :attr:`failures`). Nothing is decoded: yields nothing."""
        pairs = []
        for name, paths in examples.items():
            for path in map(str, paths):
                if self._embedded(path):
                    pairs.append((path, str(name)))
                else:
                    self.failures[path] = FileFailure(path, "no stored embedding in the result")
        self._support = pairs
        self._reviewed = {str(p) for p in reviewed}
        self._open = None  # the session's open-set state follows its support set (issue 15)
        self._fit()
        yield from ()

    def label(self, images: Any, cached_only: bool = False) -> Any:
        raise UsageError("a labeling result is re-labeled from its stored embeddings only")

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """Every labeled image and its stored embedding (a view of the session's table, not a
        copy): the embedding view places them all and draws a representative sample of them."""
        assert self._table is not None
        if self._labeled_rows is None:
            self._labeled_rows = self._table.rows(self._labeled)  # rows never move: look up once
        return list(self._labeled), self._table.vectors(self._labeled_rows)


def _adapter_state(path: Path) -> Any:
    """The stored adapter state (tensors and plain values only: ``weights_only``), or None."""
    if not path.exists():
        return None
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UsageError(f"cannot read {path} ({error})") from None
