"""Images → embeddings with one encoder: device, embedding cache, the table of every image embedded.

:class:`ImageEmbedder` is the part of a :class:`~fewshot_gui.session.LabelingSession` that runs the
model; the domain gate's probe uses it alone. Its long operations are generators (see the session).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fewshot_gui.core.embedding_table import EmbeddingTable
from fewshot_gui.core.types import FileFailure, ImageRecord, Progress
from fewshot_gui.data.decode import DEFAULT_MAX_PIXELS

STOP_CHUNK = 8
"""On the CPU a batch goes through the model in pieces of this many images and ``should_stop`` is
asked before each: Stop takes effect after one piece (a few hundred ms on 2 cores), not after a
whole batch (32 images: over 3 s on a busy 2-core machine)."""


class StopRequested(Exception):
    """Raised inside a running job when :attr:`ImageEmbedder.should_stop` returns True."""


@dataclass
class Embedded:
    """Embeddings produced by :meth:`ImageEmbedder._embed` for ``indices`` into its records."""

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


class ImageEmbedder:
    """Embed images with one encoder (a registered name or a checkpoint path), loaded on first use
    in the calling thread; ``method`` picks the checkpoint's adapter state. Keeps every embedding
    in a table (rows never move), the files that failed, and one warning line per problem kind."""

    def __init__(
        self,
        encoder: str | None = None,
        method: str = "metric",
        device: str = "auto",
        cache_dir: str | Path | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        use_cache: bool = True,
    ) -> None:
        from fewshot_gui.core.cache import default_cache_dir
        from fewshot_gui.encoders.registry import default_encoder_name

        self.encoder_name = encoder or default_encoder_name()
        self.method = method
        self.max_pixels = max_pixels
        self._requested_device = device
        self._cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._use_cache = use_cache
        self._loaded: Any = None  # LoadedEncoder
        self._plan: Any = None  # DevicePlan
        self._cache: Any = None  # EmbeddingCache
        self._table: EmbeddingTable | None = None  # every embedded image, made on load
        self.failures: dict[str, FileFailure] = {}
        self.embedded_count = 0  # images run through the model (cache misses) in this session
        self.should_stop: Callable[[], bool] | None = None  # e.g. the app's Stop button
        self._warnings: dict[str, str] = {}  # kind → one line for the user (see take_warnings)
        self._warned: set[str] = set()
        self._nonfinite: list[str] = []  # names of images the encoder gave NaN/inf for

    def with_encoder(self, encoder: str) -> ImageEmbedder:
        """A new embedder for ``encoder`` with this one's device, cache and pixel limit."""
        return ImageEmbedder(
            encoder,
            device=self._requested_device,
            cache_dir=self._cache_dir,
            max_pixels=self.max_pixels,
            use_cache=self._use_cache,
        )

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

    def switch_encoder(self, encoder: str) -> None:
        """Drop the loaded encoder and every embedding, and load ``encoder`` instead."""
        self.close()
        self._loaded, self._table = None, None
        self.encoder_name = encoder
        self.load()

    @property
    def encoder_metadata(self) -> Mapping[str, Any]:
        """What the encoder's checkpoint records besides its weights (e.g. its domain gate)."""
        self.load()
        return self._loaded.metadata

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

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

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
    def embed_into_table(self, records: Sequence[ImageRecord], stage: str) -> Iterator[Progress]:
        """Embed ``records`` (cached ones at once) into the table; failures go to :attr:`failures`."""
        for item in self._embed(records, stage):
            if isinstance(item, Progress):
                yield item
            else:
                self._store(records, item)

    def _embed(
        self, records: Sequence[ImageRecord], stage: str, cached_only: bool = False
    ) -> Iterator[Progress | Embedded]:
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
            yield Embedded(hits, np.asarray(cached, dtype=np.float32), [])
            yield rate.progress(done, 0)
        if len(missing) == 0 or cached_only:
            return
        todo = [records[i] for i in missing]
        counted = 0
        for indices, embeddings, failures in self._run_model(todo):
            done += len(indices) + len(failures)
            counted += len(indices) + len(failures)
            yield Embedded(
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

    # ---------------------------------------------------------------- the table
    def _store(self, records: Sequence[ImageRecord], result: Embedded) -> list[str]:
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
