"""The labeling session: embed (cached) → adapt to the support set → predict. No Qt.

Every long operation is a generator that yields :class:`Progress` and partial results between
batches; to cancel, stop resuming it (``close()``). The session hands out numpy only. One session owns
one encoder model — in the app, the labeling worker is the only owner of a session.

Its parts, one module each: :mod:`~fewshot_gui.session.embedding` (encoder, device, cache, table),
:mod:`~fewshot_gui.session.routing` (the domain gate), :mod:`~fewshot_gui.session.support` (the
examples and the adapter), :mod:`~fewshot_gui.session.prediction` (probabilities, unknown scores,
refinement on the folder).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure, ImageRecord, Predictions, Progress
from fewshot_gui.data.decode import DEFAULT_MAX_PIXELS
from fewshot_gui.session.support import SupportSet


@dataclass
class BatchResult:
    """Predictions for the images of one batch, and the files of that batch that failed."""

    predictions: Predictions
    failures: list[FileFailure] = field(default_factory=list)


class LabelingSession(SupportSet):
    """Label images from a few examples per class.

    ``encoder`` is a registered name or a checkpoint path (default: the best offline encoder for
    photos); ``method`` an adapter name. The encoder is loaded on first use, in the calling thread.
    """

    def __init__(
        self,
        encoder: str | None = None,
        method: str = "metric",
        device: str = "auto",
        cache_dir: str | Path | None = None,
        unknown_threshold: float | str | None = None,
        adapter_options: Mapping[str, Any] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        use_cache: bool = True,
        transductive: bool | None = None,
    ) -> None:
        from fewshot_gui.adapters.open_set import resolve_threshold
        from fewshot_gui.adapters.registry import adapter_names
        from fewshot_gui.adapters.transductive import ENABLED_BY_DEFAULT

        if method not in adapter_names():
            raise UsageError(
                f"unknown method {method!r}; choose one of: {', '.join(adapter_names())}"
            )
        super().__init__(encoder, method, device, cache_dir, max_pixels, use_cache)
        try:
            self.unknown_threshold = resolve_threshold(unknown_threshold)
        except ValueError as error:
            raise UsageError(str(error)) from None
        self.transductive = ENABLED_BY_DEFAULT if transductive is None else bool(transductive)
        self._transductive_default = transductive is None  # the domain gate may turn it off
        self._open = None  # SupportState for the current support set (see _open_set)
        self.adapter_options = dict(adapter_options or {})
        self._adapter = None
        self._labeled = []  # paths of the labeled (non-support-only) images, in order
        self._labeled_rows = None  # their table rows, once looked up
        self._labeled_set: set[str] = set()
        self._support = []  # (path, class name)
        self._reviewed = set()  # support paths labeled while reviewing
        self.encoder_note = ""  # why this encoder labels (its domain gate's choice), plain words
        self._routed = False  # the domain gate decides once, on the first support set
        self._prior_fits = False  # the domain gate found the examples in its tuning domain

    def label(
        self, images: str | Path | Iterable[ImageRecord], cached_only: bool = False
    ) -> Iterator[Progress | BatchResult]:
        """Embed (cached) and label a folder (scanned recursively) or a list of records.

        Yields :class:`Progress` and a :class:`BatchResult` per batch (partial predictions).
        ``cached_only``: label only the images whose embeddings are cached (nothing decoded, no
        model call; e.g. to show a reopened project's predictions at once).
        """
        from fewshot_gui.data.folder import scan_folder

        if self._adapter is None:
            raise UsageError("set the examples (support set) before labeling")
        records = scan_folder(images) if isinstance(images, (str, Path)) else list(images)
        self._labeled, self._labeled_set, self._labeled_rows = [], set(), None
        yield Progress(0, len(records), "labeling")
        for item in self._embed(records, "labeling", cached_only):
            if isinstance(item, Progress):
                yield item
                continue
            paths = self._store(records, item)
            for p in paths:
                if p not in self._labeled_set:
                    self._labeled_set.add(p)
                    self._labeled.append(p)
                    self._labeled_rows = None
            yield BatchResult(self._predict(paths), [f for _, f in item.failures])
        if self.uses_folder() and self._labeled:  # every image, with what the folder taught
            yield BatchResult(self.predictions(), [])
