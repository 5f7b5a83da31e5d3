"""Predictions from the embedding table: the adapter's probabilities, the unknown score (open set)
and the prototypes refined on the folder (transductive), all without a model call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fewshot_gui.core.types import Predictions
from fewshot_gui.session.embedding import ImageEmbedder


class FolderPrediction(ImageEmbedder):
    """The session's labeling maths (a part of :class:`~fewshot_gui.session.LabelingSession`):
    reads the fitted adapter and support set, the labeled images and the domain gate's verdict."""

    _adapter: Any  # the fitted adapter, or None before the first example
    _support: list[tuple[str, str]]  # (path, class name)
    _reviewed: set[str]  # support paths labeled while reviewing (see SupportSet.add_example)
    _labeled: list[str]  # paths of the labeled (non-support-only) images, in order
    _labeled_rows: slice | np.ndarray | None  # their table rows, once looked up
    _open: Any  # SupportState of the current support set (see _open_set), or None
    transductive: bool
    unknown_threshold: float | None

    def _predict(
        self,
        paths: Sequence[str],
        rows: slice | np.ndarray | None = None,
        cache: Any = None,
    ) -> Predictions:
        """Predictions for ``paths`` (embedded; ``rows``: their table rows when known), with
        unknown scores; refined on the folder when :meth:`_refines`. ``cache``: a
        :class:`~fewshot_gui.adapters.relabel.CosineCache` bound to these rows. On one thread
        (:func:`~fewshot_gui.adapters.relabel.one_thread`: a re-label is many small operations
        around one product)."""
        if self._adapter is None:
            probs = np.zeros((len(paths), 0), np.float32)
            return Predictions.from_probabilities(list(paths), [], probs)
        from fewshot_gui.adapters.relabel import one_thread

        with one_thread():
            probs, unknown = self._probabilities(paths, rows, cache)
        return Predictions.from_probabilities(
            list(paths), list(self._adapter.classes), probs, self.unknown_threshold, unknown
        )

    def _probabilities(
        self, paths: Sequence[str], rows: slice | np.ndarray | None, cache: Any
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities ``(N, C)`` and unknown scores ``(N,)`` of ``paths`` (see
        :meth:`_predict`)."""
        from fewshot_gui.adapters.transductive import predict

        assert self._table is not None
        rows = self._table.rows(paths) if rows is None else rows
        rows, take = _as_span(rows)  # the same span for the same rows: the cache holds
        adapter = self._adapter
        kind = adapter.feature_kind()
        features = self._table.features(rows, kind, adapter.query_features)
        inverse_norms = features if kind == "inverse-norm" else None
        x = self._table.vectors(rows)
        state = self._open_set()
        scorer = state.folder_scorer(len(self._labeled), self._folder_sample)
        if self._refines():
            refined = state.refined(len(self._labeled), self._folder_sample)
            probs, unknown = predict(x, inverse_norms, refined, scorer, cache)
        else:
            probs = adapter.predict_proba(x, features)
            unknown = scorer.scores(_support_cosines(x, inverse_norms, state.protos, cache))
        if take is not None:
            probs, unknown = probs[take], None if unknown is None else unknown[take]
        return probs, unknown

    def _open_set(self) -> Any:
        """The unknown scorer (and refinement cache) of the current support set."""
        if self._open is None:
            from fewshot_gui.adapters.transductive import SupportState

            paths = [p for p, _ in self._support]
            classes = list(self._adapter.classes) if self._adapter is not None else []
            reviewed = [p in self._reviewed for p in paths]
            self._open = SupportState.fit(
                self._vectors(paths),
                [c for _, c in self._support],
                classes,
                self.encoder_name,
                reviewed,
            )
        return self._open

    def _folder_sample(self) -> np.ndarray:
        """Embeddings of at most :data:`~fewshot_gui.adapters.transductive.SAMPLE` labeled images
        (a fixed-seed sample), for refining the prototypes."""
        from fewshot_gui.adapters.transductive import sample_rows

        assert self._table is not None
        if self._labeled_rows is None:
            self._labeled_rows = self._table.rows(self._labeled)
        rows, overwrites = self._labeled_rows, self._table.overwrites
        cached = getattr(self, "_sample_cache", None)
        if cached is not None and cached[0] is rows and cached[1] == overwrites:  # same images
            return cached[2]
        picked = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows
        sample = self._table.vectors(picked[sample_rows(len(picked))])  # only the sample is copied
        self._sample_cache = (rows, overwrites, sample)  # a new labeling makes a new ``rows``
        return sample

    def uses_folder(self) -> bool:
        """Final labels depend on the whole folder: the unknown score is relaxed to the folder's
        own images (:meth:`~fewshot_gui.adapters.open_set.UnknownScorer.for_folder`: its prior and
        a few examples per class can expect more similarity than a class's images show; from the
        support set alone 240 of 2,000 Flowers photos of 40 classes with 2 examples each were
        called ``unknown`` at the default threshold, 25 relaxed), and the prototypes may be
        refined on it (:meth:`_refines`). Batch predictions during :meth:`label` use the folder
        seen so far; its last item re-labels every image."""
        return self._adapter is not None

    def _refines(self) -> bool:
        """Prototypes are refined on the folder: :attr:`transductive` and a metric adapter (or
        ``auto`` using one); other methods label as they are."""
        if not self.transductive or self._adapter is None:
            return False
        adapter = getattr(self._adapter, "adapter", None) or self._adapter
        return getattr(adapter, "family", "") == "metric"

    def predictions(self) -> Predictions:
        """Current predictions for every labeled image (from cached embeddings, no model call)."""
        if self._labeled_rows is None and self._table is not None:
            self._labeled_rows = self._table.rows(self._labeled)  # rows never move: look up once
        return self._predict(self._labeled, self._labeled_rows, self._relabel_cache())

    def _relabel_cache(self) -> Any:
        """The :class:`~fewshot_gui.adapters.relabel.CosineCache` of the labeled images' rows
        (a new one when they, or any stored row, changed)."""
        from fewshot_gui.adapters.relabel import CosineCache

        if self._table is None:
            return None
        table, rows = self._table, self._labeled_rows
        held = getattr(self, "_cosine_cache", None)  # (table, rows, overwrites, cache)
        if (
            held is None
            or held[0] is not table
            or held[1] is not rows
            or held[2] != table.overwrites
        ):
            held = self._cosine_cache = (table, rows, table.overwrites, CosineCache())
        return held[3]

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """Paths and ``(N, D)`` float32 embeddings of the labeled images."""
        return list(self._labeled), self._vectors(self._labeled)


DENSE = 0.9
"""Rows that fill this share of their span are predicted over the whole span (a view of the
table) and then picked: gathering them first copied every embedding on each re-label."""


def _support_cosines(
    x: np.ndarray, inverse_norms: np.ndarray | None, protos: np.ndarray, cache: Any
) -> np.ndarray:
    """Cosines ``(N, C)`` of ``x`` to the support prototypes ``protos``, through ``cache``."""
    from fewshot_gui.adapters.relabel import cosine_to_prototypes

    if cache is None:
        return cosine_to_prototypes(x, inverse_norms, protos)
    return cache.cosines(x, inverse_norms, np.zeros((0, x.shape[1]), np.float32), protos)[1]


def _as_span(rows: slice | np.ndarray) -> tuple[slice | np.ndarray, np.ndarray | None]:
    """``(rows to compute, picks)``: a dense index array becomes the slice it spans plus the
    picks into that slice's results (typically the folder's rows around a few examples'); a
    slice or a sparse index stays as it is (picks None)."""
    if isinstance(rows, slice) or not len(rows):
        return rows, None
    low, high = int(rows.min()), int(rows.max()) + 1
    if len(rows) < DENSE * (high - low):
        return rows, None
    return slice(low, high), np.asarray(rows) - low
