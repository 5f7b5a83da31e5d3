"""What runs on the cluster: decoding tasks and the labeling actor (Ray imported lazily).

:func:`decode_batch` runs as Ray tasks ahead of the actors: each file through the local engine's
own :func:`~fewshot_gui.data.loader.decode_one` (the same decoding, preprocessing and failure
reasons; remote files through a local temporary copy). :class:`LabelActor` holds one encoder (a
:class:`~fewshot_gui.session.LabelingSession` without cache, so its forward pass, NaN check and
device plan are the local ones) and the adapter fitted on the driver, and turns decoded batches
into result rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from fewshot_gui.core.types import FileFailure, ImageRecord, Predictions


@dataclass(frozen=True)
class ActorSpec:
    """How each actor builds its encoder and what it outputs."""

    encoder: str  # the encoder the driver's session actually used (after its domain gate)
    method: str
    device: str  # "cuda" where the actor has a GPU, else "cpu"
    threads: int  # torch threads on the CPU
    max_pixels: int | None
    unknown_threshold: float | None
    embeddings: bool  # also output the fp16 embeddings
    batch: int = 32  # images per call (the map_batches batch size)
    prior_fits: bool = False  # the driver's domain gate found the examples in its tuning domain


def decode_batch(
    batch: dict[str, np.ndarray], preprocessing: dict[str, Any], max_pixels: int | None
) -> dict[str, np.ndarray]:
    """``{"path": (n,)}`` → ``path``, ``image`` (n, C, crop, crop) uint8 (zeros where failed) and
    ``error`` (n,) (empty where decoded)."""
    from fewshot_gui.cluster.source import local_copy
    from fewshot_gui.data.decode import describe_error
    from fewshot_gui.data.loader import decode_one
    from fewshot_gui.data.preprocess import Preprocessing

    prep = Preprocessing.from_dict(preprocessing)
    paths = [str(p) for p in batch["path"]]
    images = np.zeros((len(paths), prep.channels, prep.crop, prep.crop), np.uint8)
    errors = [""] * len(paths)
    for i, path in enumerate(paths):
        try:
            with local_copy(path) as local:
                result = decode_one(local, prep, max_pixels)
        except Exception as error:  # a remote read failed
            result = FileFailure(path, describe_error(error))
        if isinstance(result, FileFailure):
            errors[i] = result.reason
        else:
            images[i] = result
    return {"path": np.array(paths, object), "image": images, "error": np.array(errors, object)}


class LabelActor:
    """One encoder per actor. ``fitted_box[0]`` is the ObjectRef of what the driver fitted:
    ``(adapter, support pairs, support embeddings (S, D))``, fetched once per actor. Each batch is
    predicted by the session's own ``_predict`` (unknown scores included), so rows equal the local
    engine's; refinement on the whole folder is the driver's second pass, not done here."""

    def __init__(self, spec: ActorSpec, fitted_box: list[Any]) -> None:
        import ray
        import torch

        from fewshot_gui.session import LabelingSession

        if spec.device == "cpu":
            torch.set_num_threads(max(1, spec.threads))
        # images arrive decoded (by the tasks ahead): no device decoding, no reader processes
        os.environ["FEWSHOT_GPU_DECODE"] = os.environ["FEWSHOT_READER_PROCESSES"] = "0"
        self.spec = spec
        adapter, support, self.support_vectors = ray.get(fitted_box[0])
        self.session = LabelingSession(
            spec.encoder,
            spec.method,
            spec.device,
            unknown_threshold=spec.unknown_threshold,
            use_cache=False,
            max_pixels=spec.max_pixels,
        )
        if hasattr(self.session, "transductive"):
            self.session.transductive = False  # a batch is not the folder: see the driver's pass 2
        self.session._prior_fits = spec.prior_fits  # as the driver's session decided
        self.session.load()
        # on CUDA the session pads each call to its batch limit (one input shape for cuDNN): the
        # limit is this pool's batch size, so no call is padded beyond what arrives
        self.session._forward_limit = spec.batch
        self.session._adapter, self.session._support = adapter, list(support)
        self.support_paths = [p for p, _ in support]
        self.classes = list(adapter.classes)
        self.dim = self.session.embed_dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        errors = [str(e) for e in batch["error"]]
        indices, vectors = self._embed(batch["image"], paths, errors)
        n, c = len(paths), len(self.classes)
        out = {
            "path": np.array(paths, object),
            "label": np.array([""] * n, object),
            "confidence": np.full(n, np.nan, np.float32),
            "unknown_score": np.full(n, np.nan, np.float32),
            "error": np.array(errors, object),
            "probabilities": np.full((n, c), np.nan, np.float32),
        }
        if len(indices):
            found = self._predict([paths[i] for i in indices], vectors)
            out["label"][indices] = found.labels
            out["confidence"][indices] = found.confidences
            out["probabilities"][indices] = found.probabilities
            scores = getattr(found, "unknown_scores", ())  # the open-set score, where computed
            if len(scores) == len(indices):
                out["unknown_score"][indices] = scores
        if self.spec.embeddings:
            embedding = np.full((n, self.dim), np.nan, np.float16)
            embedding[indices] = vectors.astype(np.float16)
            out["embedding"] = embedding
        return out

    def _embed(
        self, images: np.ndarray, paths: list[str], errors: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows decoded without error → (their indices, (n, D) float32 embeddings, rounded to
        half precision as the local engine's cache rounds them); NaN/inf rows get the session's
        reason in ``errors``."""
        import torch

        ok = np.array([not e for e in errors], bool)
        pixels = torch.from_numpy(np.ascontiguousarray(images[ok]))
        vectors = self.session._forward(pixels)
        records = [ImageRecord(p, 0, 0) for p in paths]
        indices, vectors, bad = self.session._finite(records, np.flatnonzero(ok), vectors)
        for i, failure in bad:
            errors[i] = failure.reason
        with np.errstate(over="ignore"):
            half = vectors.astype(np.float16).astype(np.float32)
        return indices, np.where(np.isfinite(half), half, vectors)

    def _predict(self, paths: list[str], vectors: np.ndarray) -> Predictions:
        """The session's predictions for one batch (a table of the support set and the batch)."""
        from fewshot_gui.core.embedding_table import EmbeddingTable

        table = EmbeddingTable(self.dim)
        table.add(self.support_paths, self.support_vectors)
        table.add(paths, vectors)
        self.session._table = table
        return self.session._predict(paths)
