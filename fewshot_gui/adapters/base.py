"""The adapter interface: adapt to a support set of embeddings, then give class probabilities.

An adapter is fitted on a *support set* — embeddings ``(S, D)`` with class *names* — and predicts
probabilities ``(Q, C)`` for query embeddings. Class names are mapped to indices ``0..C-1`` only
inside, here, once.

Class order (the columns of :meth:`Adapter.predict_proba`, i.e. :attr:`Adapter.classes`):
``fit`` orders classes by first appearance in the support set; a class seen for the first time in
``add_example`` is appended at the end; a class whose last example is removed is dropped and the
others keep their relative order. The order never changes otherwise.

Subclasses implement :meth:`Adapter._refit` (support changed; rebuild whatever the method needs) and
:meth:`Adapter._logits` (``(Q, D)`` float tensor → ``(Q, C)`` logits). Everything runs on CPU torch
tensors; queries are processed in chunks so that 100k × 1280-d stays cheap in memory.

Query features: the part of a query's computation that does not depend on the support set (its
inverse norm; memory's projected query) is :meth:`Adapter.query_features`, named by
:meth:`Adapter.feature_kind`. A caller that predicts the same queries again and again (the labeling
session, after every correction) computes them once and passes them to :meth:`predict_proba`, so a
re-label is one matrix product over the embeddings.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewshot_gui.core.errors import UsageError

QUERY_CHUNK = 16384
"""Queries per matrix product in :meth:`Adapter.predict_proba`."""


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run support-set-sized torch work on one thread.

    Tiny ops on several intra-op threads are dominated by thread wake-ups (measured: an ANIL refit
    took 1.2 s on 2 busy cores vs 0.01 s on one), and the skinny (Q, D) × (D, C) query products are
    memory-bound (100k × 1280 queries: 0.65–1.0 s on one thread vs 1.3–1.6 s on two, same machine).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows of ``x`` (..., D) scaled to unit L2 norm (zero rows stay zero)."""
    return F.normalize(x, dim=-1, eps=eps)


def class_means(
    x: torch.Tensor, y: torch.Tensor, n_way: int, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-class mean of ``x`` (S, D) under labels ``y`` (S,) long → (n_way, D), weighted by
    ``weights`` (S,) when given. Differentiable."""
    if weights is None:
        sums = torch.zeros(n_way, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, y, x)
        counts = torch.bincount(y, minlength=n_way).clamp_min(1).to(x.dtype)
        return sums / counts[:, None]
    w = weights.to(x.dtype)
    sums = torch.zeros(n_way, x.shape[1], dtype=x.dtype, device=x.device)
    sums = sums.index_add(0, y, x * w[:, None])
    counts = torch.zeros(n_way, dtype=x.dtype, device=x.device).index_add(0, y, w)
    return sums / counts.clamp_min(1e-12)[:, None]


REVIEWED_WEIGHT = 0.25
"""Weight of a review label (an image accepted or corrected while reviewing the folder, least
confident first) where an example the user gave weighs 1: in the metric family's prototypes
(:class:`~fewshot_gui.adapters.metric.MetricAdapter`) and the folder refinement
(:mod:`~fewshot_gui.adapters.transductive`). The review shows a class's boundary cases, not its
typical members; at full weight one accepted image of a diverse class pulled that class's
prototype off its own images (Flowers 10-way 1-shot, seed 2: 22 'camellia' images lost by
accepting a fourth). Measured with ``benchmarks/review_loop.py`` (issue 13 note)."""


def balanced_weights(y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Per-example loss weights (S,) so that every class weighs the same; mean weight is 1."""
    counts = torch.bincount(y, minlength=n_way).to(torch.float32)
    w = 1.0 / counts[y]
    return w * (len(y) / w.sum())


def select_state(state: Mapping[str, Any] | None, prefix: str) -> dict[str, Any] | None:
    """The part of a checkpoint's adapter state meant for this method.

    Keys starting with ``"<prefix>."`` are taken (prefix stripped) when any exist, so one checkpoint
    can carry several methods' states; otherwise the whole dict is used as is.
    """
    if not state:
        return None
    mine = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
    return mine or dict(state)


class Adapter(ABC):
    """Few-shot adaptation on embeddings; see the module docstring for the class order rule.

    Class attributes are the method's metadata, read by the registry and everything built on it
    (CLI choices, the app's chooser, ``auto``, meta-training): ``name`` (the entry point's name),
    ``family`` (``"metric"``, ``"memory"``, ``"optimization"``, ``"auto"`` or a plug-in's own),
    ``help`` (one line), ``order`` (menu position; built-ins 10–40, ``auto`` 90, plug-ins 50 by
    default), ``auto`` (``"default"``: ``auto`` compares it; ``"learned"``: only when a
    meta-learned state is given; ``"never"``), ``refit_cost_s`` (``auto``'s estimate of one fit's
    seconds per class × dimension) and ``full_network`` (its learner can also adapt the whole
    encoder on images, ``adapt="full"``). :meth:`learner` gives the differentiable
    learner that meta-training trains; its keyword defaults are the method's meta-train defaults.
    """

    name: ClassVar[str]
    family: ClassVar[str] = "other"
    help: ClassVar[str] = ""
    order: ClassVar[int] = 50
    auto: ClassVar[str] = "never"
    refit_cost_s: ClassVar[float] = 1e-6  # measured for anil's head on this project's 2-core CI
    full_network: ClassVar[bool] = False

    @classmethod
    def learner(cls, dim: int, **options: Any) -> nn.Module:
        """The method as a differentiable ``nn.Module`` for meta-training on ``dim``-d embeddings:
        ``forward(support (S, D), support_y (S,) long, query (Q, D), n_way) -> logits (Q, n_way)``.

        Meta-training passes the settings this signature names among ``steps`` (inner steps),
        ``lr`` (inner learning rate), ``adapt`` (``"head"`` / ``"full"``) and ``pretrained``
        (the backbone is ImageNet-pretrained), then the user's ``--option KEY=VALUE`` pairs. The
        learner's ``adapter_state()`` (else ``state_dict()``) is saved as the checkpoint's adapter
        state, handed back to this class as ``state=`` at labeling time. Optional hooks:
        ``calibrate(episodes) -> dict`` after each validation, on its episodes' embeddings
        ``[(support (S, D), support_y (S,), query (Q, D), query_y (Q,)), …]`` (its result is
        recorded in the checkpoint), ``describe() -> dict`` (settings for the checkpoint's
        metadata), ``adapts_encoder = True`` with ``forward(encoder, support_x, support_y,
        query_x, n_way)`` on images (full-network inner loops). Methods without a learner (the
        default) cannot be meta-trained.
        """
        raise NotImplementedError(f"method '{cls.name}' cannot be meta-trained")

    @classmethod
    def trainable(cls) -> bool:
        """Whether this method provides a :meth:`learner`."""
        return cls.learner.__func__ is not Adapter.learner.__func__  # type: ignore[attr-defined]

    def __init__(self, *, state: Mapping[str, Any] | None = None, **options: Any) -> None:
        if options:
            raise UsageError(
                f"Unknown option(s) for method '{self.name}': {', '.join(sorted(options))}."
            )
        self._state = select_state(state, self.name)
        self._x = torch.empty(0, 0)
        self._labels: list[str] = []
        self._weights: list[float] = []  # per example (see example_weights)
        self._classes: list[str] = []

    # --- public interface -------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """Class names, in the order of the probability columns."""
        return list(self._classes)

    @property
    def support_size(self) -> int:
        return len(self._labels)

    @property
    def support_labels(self) -> list[str]:
        return list(self._labels)

    @property
    def example_weights(self) -> torch.Tensor:
        """Each example's weight (S,) float32: 1, or less for a review label
        (:data:`REVIEWED_WEIGHT`). Methods that average their examples (metric) use it."""
        return torch.tensor(self._weights, dtype=torch.float32)

    @property
    def dim(self) -> int:
        return int(self._x.shape[1]) if self._labels else 0

    def fit(
        self,
        embeddings: np.ndarray,
        labels: Sequence[str],
        weights: Sequence[float] | None = None,
    ) -> Adapter:
        """Adapt to a support set: ``embeddings`` (S, D) float, ``labels`` S class names,
        ``weights`` S per-example weights (all 1 when None; see :attr:`example_weights`)."""
        x = _as_matrix(embeddings)
        labels = [str(label) for label in labels]
        if x.shape[0] == 0 or not labels:
            raise UsageError("The support set is empty: give at least one example of a class.")
        if x.shape[0] != len(labels):
            raise UsageError(f"Got {x.shape[0]} support embeddings but {len(labels)} labels.")
        weights = [1.0] * len(labels) if weights is None else [float(w) for w in weights]
        if len(weights) != len(labels) or min(weights) <= 0:
            raise UsageError(f"Got {len(weights)} example weights for {len(labels)} examples.")
        self._x, self._labels, self._weights = x, labels, weights
        self._classes = list(dict.fromkeys(labels))
        with single_thread():
            self._refit()
        return self

    def add_example(self, embedding: np.ndarray, label: str, weight: float = 1.0) -> None:
        """Add one example ``embedding`` (D,) of class ``label`` (``weight``: see
        :attr:`example_weights`) to the support set."""
        row = _as_matrix(np.asarray(embedding).reshape(1, -1))
        if not self._labels:
            self.fit(row.numpy(), [label], [weight])
            return
        if row.shape[1] != self.dim:
            raise UsageError(f"Embedding has {row.shape[1]} dimensions, expected {self.dim}.")
        label = str(label)
        self._labels.append(label)
        self._weights.append(float(weight))
        if label not in self._classes:
            self._classes.append(label)
        with single_thread():  # the copy too: on two busy threads it took 8 ms, on one 0.03
            self._x = torch.cat([self._x, row])
            self._example_added()

    def remove_example(self, index: int) -> None:
        """Remove the support example at ``index`` (support order); drop its class if emptied."""
        if not -self.support_size <= index < self.support_size:
            raise UsageError(
                f"No support example {index} (the support set has {self.support_size})."
            )
        index %= self.support_size
        label = self._labels.pop(index)
        self._weights.pop(index)
        with single_thread():
            self._x = torch.cat([self._x[:index], self._x[index + 1 :]])
        if not self._labels:
            self._classes, self._x = [], torch.empty(0, 0)
        elif label not in self._labels:
            self._classes.remove(label)
        with single_thread():
            self._example_removed(index)

    def feature_kind(self) -> str | None:
        """Name of what :meth:`query_features` computes now (None: this adapter uses none).

        Features of the same kind are interchangeable (computed by any adapter of this session);
        the kind may change when the support set does (``auto`` switching methods, a triplet
        projection), and cached features of another kind must then be recomputed.
        """
        return None

    def query_features(self, queries: np.ndarray) -> np.ndarray:
        """Support-independent features ``(Q, F)`` float32 of ``queries`` (Q, D), for
        :meth:`predict_proba`; of the kind :meth:`feature_kind` names."""
        q = _as_matrix(queries, check_finite=False)
        with torch.no_grad(), single_thread():
            return self._query_features(q).numpy()

    def predict_proba(self, queries: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities (Q, C) float32 for ``queries`` (Q, D); rows sum to 1.

        ``features`` (Q, F): :meth:`query_features` of these queries, computed earlier by the caller
        (of the current :meth:`feature_kind`); computed here when not given.
        """
        if not self._labels:
            raise UsageError("The support set is empty: give at least one example of a class.")
        # No separate pass over every query to look for NaN/inf (re-labeling is memory-bound): a
        # non-finite value makes its row's probabilities non-finite, which is checked below.
        q = _as_matrix(queries, check_finite=False)
        if q.shape[1] != self.dim and q.shape[0]:
            raise UsageError(f"Queries have {q.shape[1]} dimensions, expected {self.dim}.")
        kind = self.feature_kind()
        f = None if kind is None or features is None else torch.as_tensor(features)
        if f is not None and f.shape[0] != q.shape[0]:
            raise UsageError(f"Got features for {f.shape[0]} queries, expected {q.shape[0]}.")
        out = np.empty((q.shape[0], len(self._classes)), dtype=np.float32)
        with torch.no_grad(), single_thread():
            for start in range(0, q.shape[0], QUERY_CHUNK):
                chunk = q[start : start + QUERY_CHUNK]
                if kind is None:
                    part = None
                elif f is None:
                    part = self._query_features(chunk)
                else:
                    part = f[start : start + QUERY_CHUNK]
                logits = self._logits(chunk, part)
                out[start : start + len(chunk)] = torch.softmax(logits, 1).numpy()
        if out.size and not np.isfinite(out.sum(1)).all():
            raise UsageError("Embeddings contain NaN or infinite values.")
        self._read_done()
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore this adapter (support set and fitted state)."""
        return {
            "method": self.name,
            "support": self._x.clone(),
            "labels": list(self._labels),
            "classes": list(self._classes),
        }

    def load_state(self, state: Mapping[str, Any]) -> Adapter:
        """Restore from :meth:`state_dict`; subclasses restore their extras after this."""
        if state.get("method") != self.name:
            raise UsageError(
                f"Saved state is for method '{state.get('method')}', not '{self.name}'."
            )
        self._x = state["support"].clone().float()
        self._labels = list(state["labels"])
        self._classes = list(state["classes"])
        return self

    # --- helpers for subclasses -------------------------------------------------------------
    @property
    def targets(self) -> torch.Tensor:
        """Support labels as class indices (S,) long, in :attr:`classes` order."""
        index = {c: i for i, c in enumerate(self._classes)}
        return torch.tensor([index[label] for label in self._labels], dtype=torch.long)

    @abstractmethod
    def _refit(self) -> None:
        """The support set changed as a whole: rebuild the method's state."""

    @abstractmethod
    def _logits(self, queries: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """Logits (Q, C) for ``queries`` (Q, D) with their ``features`` (Q, F) (None when
        :meth:`feature_kind` is None); softmax gives the probabilities."""

    def _query_features(self, queries: torch.Tensor) -> torch.Tensor:
        """Features (Q, F) of ``queries`` (Q, D) for the current :meth:`feature_kind`."""
        kind = self.feature_kind()
        if kind not in QUERY_FEATURES:
            raise NotImplementedError(f"{type(self).__name__} has no query features of kind {kind}")
        return QUERY_FEATURES[kind](queries)

    def _example_added(self) -> None:
        """One example was appended; default: refit everything."""
        self._refit()

    def _example_removed(self, index: int) -> None:
        """The example at ``index`` was removed; default: refit (if anything is left)."""
        if self._labels:
            self._refit()

    def _read_done(self) -> None:  # noqa: B027  (an optional hook)
        """Called after each :meth:`predict_proba` (memory uses it to update slot usage)."""


def inverse_norms(queries: torch.Tensor) -> torch.Tensor:
    """``1 / |q|`` (Q, 1) for ``queries`` (Q, D) (zero rows: a large finite value)."""
    return torch.linalg.vector_norm(queries, dim=1, keepdim=True).clamp_min(1e-12).reciprocal()


def squared_norms(queries: torch.Tensor) -> torch.Tensor:
    """``|q|²`` (Q, 1) for ``queries`` (Q, D)."""
    return torch.linalg.vector_norm(queries, dim=1, keepdim=True).square()


QUERY_FEATURES = {"inverse-norm": inverse_norms, "squared-norm": squared_norms}
"""The shared feature kinds and how to compute them; adapters with their own kinds override
:meth:`Adapter._query_features`."""


def _as_matrix(array: np.ndarray | torch.Tensor, check_finite: bool = True) -> torch.Tensor:
    """A (N, D) float32 CPU tensor sharing memory with ``array`` when possible."""
    t = torch.as_tensor(np.asarray(array, dtype=np.float32))
    if t.ndim != 2:
        raise UsageError(f"Expected a (N, D) array of embeddings, got shape {tuple(t.shape)}.")
    if check_finite and t.numel() and not torch.isfinite(t.sum(1)).all():  # NaN/inf poisons a row
        raise UsageError("Embeddings contain NaN or infinite values.")
    return t
