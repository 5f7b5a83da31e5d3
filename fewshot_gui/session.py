"""The labeling session: embed (cached) → adapt to the support set → predict. No Qt.

Every long operation is a generator that yields :class:`Progress` and partial results between
batches; to cancel, stop resuming it (``close()``). The session hands out numpy only. One session owns
one encoder model — in the app, the labeling worker is the only owner of a session.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fewshot_gui.core.embedding_table import EmbeddingTable
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import FileFailure, ImageRecord, Predictions, Progress
from fewshot_gui.data.decode import DEFAULT_MAX_PIXELS
from fewshot_gui.data.folder import record_for

STOP_CHUNK = 8
"""On the CPU a batch goes through the model in pieces of this many images and ``should_stop`` is
asked before each: Stop takes effect after one piece (a few hundred ms on 2 cores), not after a
whole batch (32 images: over 3 s on a busy 2-core machine)."""


class StopRequested(Exception):
    """Raised inside a running job when :attr:`LabelingSession.should_stop` returns True."""


@dataclass
class BatchResult:
    """Predictions for the images of one batch, and the files of that batch that failed."""

    predictions: Predictions
    failures: list[FileFailure] = field(default_factory=list)


@dataclass
class _Embedded:
    """Embeddings produced by :meth:`LabelingSession._embed` for ``indices`` into its records."""

    indices: np.ndarray
    embeddings: np.ndarray
    failures: list[tuple[int, FileFailure]]


class _Rate:
    """Items per second and ETA over a run."""

    def __init__(self, total: int, stage: str) -> None:
        self.total, self.stage, self.start = total, stage, time.perf_counter()

    def progress(self, done: int, counted: int) -> Progress:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = counted / elapsed if counted else 0.0
        eta = (self.total - done) / rate if rate > 0 else None
        return Progress(done, self.total, self.stage, rate, eta)


class LabelingSession:
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
        from fewshot_gui.adapters.registry import adapter_names
        from fewshot_gui.core.cache import default_cache_dir
        from fewshot_gui.encoders.registry import default_encoder_name

        if method not in adapter_names():
            raise UsageError(
                f"unknown method {method!r}; choose one of: {', '.join(adapter_names())}"
            )
        self.encoder_name = encoder or default_encoder_name()
        self.method = method
        from fewshot_gui.adapters.open_set import resolve_threshold
        from fewshot_gui.adapters.transductive import ENABLED_BY_DEFAULT

        try:
            self.unknown_threshold = resolve_threshold(unknown_threshold)
        except ValueError as error:
            raise UsageError(str(error)) from None
        self.transductive = ENABLED_BY_DEFAULT if transductive is None else bool(transductive)
        self._transductive_default = transductive is None  # the domain gate may turn it off
        self._open: Any = None  # OpenSetState for the current support set (see _open_set)
        self.adapter_options = dict(adapter_options or {})
        self.max_pixels = max_pixels
        self._requested_device = device
        self._cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._use_cache = use_cache
        self._loaded: Any = None  # LoadedEncoder
        self._plan: Any = None  # DevicePlan
        self._cache: Any = None  # EmbeddingCache
        self._adapter: Any = None
        self._table: EmbeddingTable | None = None  # every embedded image, made on load
        self._labeled: list[str] = []  # paths of the labeled (non-support-only) images, in order
        self._labeled_rows: slice | np.ndarray | None = None  # their table rows, once looked up
        self._labeled_set: set[str] = set()
        self._support: list[tuple[str, str]] = []  # (path, class name)
        self.failures: dict[str, FileFailure] = {}
        self.embedded_count = 0  # images run through the model (cache misses) in this session
        self.should_stop: Callable[[], bool] | None = None  # e.g. the app's Stop button
        self._warnings: dict[str, str] = {}  # kind → one line for the user (see take_warnings)
        self._warned: set[str] = set()
        self._nonfinite: list[str] = []  # names of images the encoder gave NaN/inf for
        self.encoder_note = ""  # why this encoder labels (its domain gate's choice), plain words
        self._routed = False  # the domain gate decides once, on the first support set
        self._prior_fits = False  # the gate found the examples in the unknown prior's domain

    # ---------------------------------------------------------------- model and device
    def load(self) -> None:
        """Pick the device and load the encoder (no-op once loaded)."""
        if self._loaded is not None:
            return
        from fewshot_gui.core.cache import EmbeddingCache
        from fewshot_gui.core.device import plan_device
        from fewshot_gui.encoders.registry import load_encoder

        spec_size = 224
        self._plan = plan_device(self._requested_device, spec_size)
        if self._plan.decode_on_device and self._plan.reader_processes:
            from fewshot_gui.data.read_processes import start_reader_processes

            start_reader_processes()  # while the model loads
        self._loaded = load_encoder(self.encoder_name, self._plan, method=self.method)
        spec = self._loaded.spec
        if spec.preprocessing.crop != spec_size:
            self._plan = plan_device(self._requested_device, spec.preprocessing.crop)
        if self._use_cache:
            self._cache = EmbeddingCache(self._cache_dir, self.encoder_id, spec.embed_dim)
        self._table = EmbeddingTable(spec.embed_dim)

    @property
    def encoder_id(self) -> str:
        """Identity of the encoder's weights and preprocessing, for the embedding cache."""
        from fewshot_gui.encoders.registry import embedding_cache_id

        self.load()
        return embedding_cache_id(self._loaded.spec)

    @property
    def device_name(self) -> str:
        self.load()
        return str(self._plan.name)

    @property
    def embed_dim(self) -> int:
        self.load()
        return int(self._loaded.spec.embed_dim)

    # ---------------------------------------------------------------- warnings
    @property
    def warnings(self) -> list[str]:
        """One line per problem met so far that did not stop the run (a damaged cache rebuilt, a
        cache that cannot be written, images the encoder gave NaN/inf for)."""
        cache = list(self._cache.warnings) if self._cache is not None else []
        return [*cache, *self._warnings.values()]

    def take_warnings(self) -> list[str]:
        """The lines of :attr:`warnings` not taken before (for the CLI and the app to show)."""
        new = [w for w in self.warnings if w not in self._warned]
        self._warned.update(new)
        return new

    def _finite(
        self, records: Sequence[ImageRecord], indices: np.ndarray, embeddings: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, FileFailure]]]:
        """Split off the rows of ``embeddings`` ``(n, D)`` that are not finite: those images fail
        with a reason naming the encoder, and are neither used nor cached."""
        finite = np.isfinite(embeddings).all(axis=1)
        if finite.all():
            return indices, embeddings, []
        reason = f"the encoder {self.encoder_name} gave NaN/inf values for this image"
        failed = [(int(i), FileFailure(records[i].path, reason)) for i in indices[~finite]]
        self._nonfinite += [Path(f.path).name for _, f in failed]
        self._warnings["nonfinite"] = (
            f"the encoder {self.encoder_name} gave NaN/inf embeddings for {len(self._nonfinite)} "
            f"images (e.g. {', '.join(self._nonfinite[:3])}); they are listed as failed and not cached"
        )
        return indices[finite], embeddings[finite], failed

    # ---------------------------------------------------------------- embedding
    def _embed(
        self, records: Sequence[ImageRecord], stage: str, cached_only: bool = False
    ) -> Iterator[Progress | _Embedded]:
        """Embeddings for ``records``: cached ones at once, the rest batch by batch (none with
        ``cached_only``)."""
        self.load()
        rate = _Rate(len(records), stage)
        done = 0
        if self._cache is not None:
            hits, cached, missing = self._cache.get_many(records)
        else:
            hits, cached, missing = (
                np.zeros(0, int),
                np.zeros((0, self.embed_dim)),
                np.arange(len(records)),
            )
        if len(hits):
            done += len(hits)
            yield _Embedded(hits, np.asarray(cached, dtype=np.float32), [])
            yield rate.progress(done, 0)
        if len(missing) == 0 or cached_only:
            return
        todo = [records[i] for i in missing]
        counted = 0
        for indices, embeddings, failures in self._run_model(todo):
            done += len(indices) + len(failures)
            counted += len(indices) + len(failures)
            yield _Embedded(
                missing[indices], embeddings, [(int(missing[i]), f) for i, f in failures]
            )
            yield rate.progress(done, counted)

    def _run_model(
        self, records: Sequence[ImageRecord]
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[tuple[int, FileFailure]]]]:
        """Decode in parallel, run the encoder, store in the cache; backs off on out-of-memory."""
        from fewshot_gui.data.loader import iter_plan_batches

        plan, spec = self._plan, self._loaded.spec
        batches = iter_plan_batches(records, spec.preprocessing, plan, self.max_pixels)
        try:
            for batch in batches:
                indices = np.asarray(batch.indices, dtype=np.int64)
                embeddings = self._forward_stoppable(batch.images)
                indices, embeddings, bad = self._finite(records, indices, embeddings)
                if self._cache is not None and len(indices):
                    self._cache.put_many([records[i] for i in indices], embeddings)
                    # the cache keeps half precision: use exactly what a later run reads back (or,
                    # for rows too large for it, re-embeds), so every run gives the same results
                    with np.errstate(over="ignore"):
                        half = embeddings.astype(np.float16).astype(np.float32)
                    embeddings = np.where(np.isfinite(half), half, embeddings)
                self.embedded_count += len(indices) + len(bad)
                yield indices, embeddings, [*batch.failures, *bad]
        finally:
            batches.close()

    def _forward_stoppable(self, images: Any) -> np.ndarray:
        """:meth:`_forward`, in pieces of :data:`STOP_CHUNK` on the CPU with a stop check before
        each; raises :class:`StopRequested`."""
        stop = self.should_stop
        step = STOP_CHUNK if stop is not None and self._plan.device.type == "cpu" else len(images)
        if step >= len(images):
            return self._forward(images)
        parts = []
        for start in range(0, len(images), step):
            if stop is not None and stop():
                raise StopRequested
            parts.append(self._forward(images[start : start + step]))
        return np.concatenate(parts)

    def _forward(self, images: Any) -> np.ndarray:
        """``(n, C, H, W)`` uint8 tensor (CPU or device) → ``(n, D)`` float32 numpy.

        On CUDA every call runs the model on one input shape (short batches are padded with
        zeros): cuDNN autotuning costs seconds for each new shape (10 s for EfficientNet-Lite0 on
        an H100). On out-of-memory the batch is halved, for the rest of the session.
        """
        import torch

        from fewshot_gui.core.device import empty_device_cache, inference, is_out_of_memory

        plan, model, prep = self._plan, self._loaded.model, self._loaded.spec.preprocessing
        n = len(images)
        if n == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        limit = int(getattr(self, "_forward_limit", plan.batch_size))
        if n > limit:
            parts = [self._forward(images[i : i + limit]) for i in range(0, n, limit)]
            return np.concatenate(parts)
        x = None
        try:
            with inference(plan):
                x = plan.to_device(images)
                if plan.is_cuda and n < limit:
                    x = torch.cat([x, x.new_zeros((limit - n, *x.shape[1:]))])
                x = prep.normalize(x)
                if plan.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                return model(x)[:n].float().cpu().numpy()
        except Exception as error:
            if not is_out_of_memory(error) or limit == 1:
                raise
        x = None  # out of the handler: the failed attempt's tensors can be freed
        empty_device_cache(plan)
        self._forward_limit = max(1, limit // 2)
        return self._forward(images)

    def _store(self, records: Sequence[ImageRecord], result: _Embedded) -> list[str]:
        """Keep the embeddings of a batch in the table; returns their paths."""
        assert self._table is not None
        paths = [records[i].path for i in result.indices]
        self._table.add(paths, result.embeddings)
        for _, failure in result.failures:
            self.failures[failure.path] = failure
        for p in paths:
            self.failures.pop(p, None)
        return paths

    def _vectors(self, paths: Sequence[str]) -> np.ndarray:
        """``(len(paths), D)`` embeddings; a view, not a copy, when the rows are contiguous."""
        if not paths or self._table is None:
            return np.zeros((0, self.embed_dim), np.float32)
        return self._table.vectors(self._table.rows(paths))

    def _embedded(self, path: str) -> bool:
        return self._table is not None and path in self._table

    # ---------------------------------------------------------------- support set
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

    def set_support(self, examples: Mapping[str, Sequence[str | Path]]) -> Iterator[Progress]:
        """Embed the examples of each class and fit the adapter.

        Examples that cannot be read are recorded in :attr:`failures`; classes left without a
        readable example are dropped. Raises UsageError when no class has one.
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
        for item in self._embed(records, "examples"):
            if isinstance(item, Progress):
                yield item
            else:
                self._store(records, item)
        self._support = [(r.path, name) for r, name in pairs if self._embedded(r.path)]
        self._fit()

    def _route(self, records: Sequence[ImageRecord]) -> Iterator[Progress]:
        """Once per session, before its first examples are embedded: an encoder with a domain gate
        (``photos``) keeps its tuned features only when the examples, embedded by the gate's base
        encoder, look like its tuning domain; otherwise the session switches to the base encoder
        (plain ImageNet features: never worse than them on a domain it was not tuned on)."""
        if self._routed or not records:
            return
        self._routed = True
        from fewshot_gui.encoders.domain_gate import DomainGate

        self.load()
        gate = DomainGate.from_dict(self._loaded.metadata.get("domain_gate"))
        if gate is None:
            return
        probe = LabelingSession(
            gate.base,
            device=self._requested_device,
            cache_dir=self._cache_dir,
            max_pixels=self.max_pixels,
            use_cache=self._use_cache,
        )
        probe.should_stop = self.should_stop
        try:
            for item in probe._embed(records, "examples"):
                if isinstance(item, Progress):
                    yield item
                else:
                    probe._store(records, item)
            support = probe._vectors([r.path for r in records if probe._embedded(r.path)])
        finally:
            probe.close()
        self.encoder_note = gate.reason(support, self.encoder_name)
        self._prior_fits = gate.in_domain(support)
        if not self._prior_fits:
            self._warnings["encoder"] = self.encoder_note
            if self._transductive_default:
                # refinement on the folder was validated with the tuned features; on the base
                # features of an unseen domain (DTD) it made single corrections swing the folder
                # (review loop: largest fall 1.8-3.9 -> 4.1-5.7 points), so it is off there
                self.transductive = False
            self.close()
            self._loaded, self._table = None, None
            self.encoder_name = gate.base
            self.load()

    def _fit(self) -> None:
        from fewshot_gui.adapters.registry import create_adapter

        if not self._support:
            raise UsageError("no class has a readable example image; add at least one example")
        adapter = create_adapter(
            self.method, state=self._loaded.adapter_state, **self.adapter_options
        )
        paths = [p for p, _ in self._support]
        adapter.fit(self._vectors(paths), [c for _, c in self._support])
        self._adapter = adapter
        self._open = None

    def add_example(self, path: str | Path, label: str) -> Predictions:
        """Add one example (embedding it if needed) and re-label every embedded image."""
        record = record_for(path)
        if not self._embedded(record.path):
            for item in self._embed([record], "example"):
                if isinstance(item, _Embedded):
                    self._store([record], item)
            if not self._embedded(record.path):
                reason = self.failures.get(record.path, FileFailure(record.path, "unreadable"))
                raise UsageError(f"cannot use {record.path} as an example: {reason.reason}")
        # A relabeled example moves class: drop its old entry first.
        self._drop_support(record.path)
        self._support.append((record.path, str(label)))
        self._open = None
        if self._adapter is None:
            self._fit()
        else:  # adapters accept examples of new classes too
            self._adapter.add_example(self._vectors([record.path])[0], str(label))
        return self.predictions()

    def _drop_support(self, path: str) -> bool:
        for i, (p, _) in enumerate(self._support):
            if p == path:
                del self._support[i]
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

    # ---------------------------------------------------------------- labeling
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

    def _predict(self, paths: Sequence[str], rows: slice | np.ndarray | None = None) -> Predictions:
        """Predictions for ``paths`` (embedded; ``rows``: their table rows when known), with
        unknown scores; refined on the folder when :meth:`_refines`."""
        if self._adapter is None:
            probs = np.zeros((len(paths), 0), np.float32)
            return Predictions.from_probabilities(list(paths), [], probs)
        assert self._table is not None
        rows = self._table.rows(paths) if rows is None else rows
        adapter = self._adapter
        kind = adapter.feature_kind()
        features = self._table.features(rows, kind, adapter.query_features)
        inverse_norms = features if kind == "inverse-norm" else None
        x = self._table.vectors(rows)
        state = self._open_set()
        scorer = state.scorer
        if not self._prior_fits:
            scorer = state.folder_scorer(len(self._labeled), self._folder_sample)
        if self._refines():
            from fewshot_gui.adapters.transductive import predict

            refined = state.refined(len(self._labeled), self._folder_sample)
            probs, unknown = predict(x, inverse_norms, refined, scorer)
        else:
            from fewshot_gui.adapters.open_set import cosine_to_prototypes

            probs = adapter.predict_proba(x, features)
            unknown = scorer.scores(cosine_to_prototypes(x, inverse_norms, state.protos))
        return Predictions.from_probabilities(
            list(paths), list(adapter.classes), probs, self.unknown_threshold, unknown
        )

    def _open_set(self) -> Any:
        """The unknown scorer (and refinement cache) of the current support set."""
        if self._open is None:
            from fewshot_gui.adapters.transductive import SupportState

            paths = [p for p, _ in self._support]
            self._open = SupportState.fit(
                self._vectors(paths), [c for _, c in self._support], self.classes, self.encoder_name
            )
        return self._open

    def _folder_sample(self) -> np.ndarray:
        """Embeddings of at most :data:`~fewshot_gui.adapters.transductive.SAMPLE` labeled images
        (a fixed-seed sample), for refining the prototypes."""
        from fewshot_gui.adapters.transductive import sample_rows

        assert self._table is not None
        if self._labeled_rows is None:
            self._labeled_rows = self._table.rows(self._labeled)
        rows = self._labeled_rows
        if isinstance(rows, slice):
            rows = np.arange(rows.start, rows.stop)
        return self._table.vectors(rows[sample_rows(len(rows))])  # only the sample is copied

    def uses_folder(self) -> bool:
        """Final labels depend on the whole folder: the prototypes are refined on it
        (:meth:`_refines`), or the unknown score is relaxed to the folder's own images
        (:meth:`~fewshot_gui.adapters.open_set.UnknownScorer.for_folder`) because its prior, fitted
        on the encoder's tuning domain, may not describe these examples: only where a domain
        gate found them in that domain is it kept as fitted (there it catches far clutter at the
        default threshold: 72 -> 100 % at 5 shots with Flowers, measured by
        ``benchmarks/open_set.py`` with and without ``--folder``). Batch predictions during
        :meth:`label` use the folder seen so far; its last item re-labels every image."""
        return self._adapter is not None and (self._refines() or not self._prior_fits)

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
        return self._predict(self._labeled, self._labeled_rows)

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """Paths and ``(N, D)`` float32 embeddings of the labeled images."""
        return list(self._labeled), self._vectors(self._labeled)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
