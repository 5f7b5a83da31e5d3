"""``auto``: choose the adapter per task by cross-validation on the current support set.

Every candidate method (``candidates``; default: metric, memory, anil as the fast stand-in for the
MAML family, and metalstm when a meta-learned state for it is given) is scored on the *same*
held-out folds of the support set; the highest accuracy wins — another method must beat metric by
at least two held-out examples to replace it — and ties go to the simpler method
(candidate order, metric first: on a few dozen examples accuracy moves in coarse steps, and the
log-likelihood, kept as the last tie-break, favoured over-confident methods on Flowers). The winner,
fitted on the whole support set, does the work.

Folds (:func:`make_folds`): examples of classes with a single example are never held out (their
class would vanish). When every class has at least ``KFOLD_MIN_SHOT`` examples, a stratified
``KFOLD``-fold split is used; otherwise leave-one-out, capped at ``max_folds`` folds (examples are
dealt to the folds round-robin class by class, so no fold takes a class's last example). With no
class of two or more examples (or a single class) nothing can be held out: ``metric`` is used
without evaluating.

Cost: metric and memory are scored in closed form on all folds at once (prototypes without the
fold's examples; memory attention with the fold's slots masked), the others by refitting on each
fold; the fold count is lowered (to 2 at least) so that the estimated refitting time
(:func:`refit_cost_s`) stays within ``budget_s``. The decision is remade on
:meth:`~Adapter.add_example` / :meth:`~Adapter.remove_example` only when a class appeared or
the support set changed by ``redecide_fraction`` (edits since the last decision over its support
size); otherwise the edit is forwarded to the chosen adapter, which keeps live re-labeling fast.

State: ``state`` is a checkpoint's multi-method adapter state whose keys are ``"<method>.<key>"``;
each candidate receives its own part (prefix stripped). ``states={method: state}`` gives the parts
directly (and wins over ``state`` for the methods it names). A candidate that fails to build or fit
(e.g. a state for other embeddings) is skipped and reported in :attr:`AutoAdapter.failures`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

# Importing the candidates registers them in this order before ``auto``; keep it alphabetical.
from fewshot_gui.adapters import maml as _maml  # noqa: F401
from fewshot_gui.adapters import memory as _memory  # noqa: F401
from fewshot_gui.adapters import metalstm as _metalstm  # noqa: F401
from fewshot_gui.adapters import metric as _metric  # noqa: F401
from fewshot_gui.adapters.base import Adapter, l2_normalize
from fewshot_gui.adapters.memory import DEFAULT_TEMPERATURE_SCALE, MemoryAdapter
from fewshot_gui.adapters.metric import MetricAdapter, fit_scale, loo_similarity, similarity
from fewshot_gui.adapters.registry import adapter_class, adapter_names, register_adapter
from fewshot_gui.core.errors import UsageError

DEFAULT_CANDIDATES = ("metric", "memory", "anil")
LEARNED_ONLY = ("metalstm",)
"""Default candidates only with a meta-learned state: untrained, the LSTM optimizer is plain
gradient descent on the same head as ``anil`` at ~10x its cost."""
FALLBACK = "metric"
KFOLD = 5
KFOLD_MIN_SHOT = 5
MAX_FOLDS = 10
REDECIDE_FRACTION = 0.2
BUDGET_S = 0.5
"""Estimated seconds of refitting per decision; fewer folds are used beyond it (at least 2)."""
FIT_OVERHEAD_S = 0.005
DEFAULT_REFIT_COST_S = 1e-6  # per head coordinate (class × dimension); measured for anil
REFIT_COST_S = {"metalstm": 1.5e-5}  # a 20-unit LSTM step per coordinate


def make_folds(y: torch.Tensor, n_way: int, max_folds: int = MAX_FOLDS) -> tuple[torch.Tensor, str]:
    """Fold index per support example (S,) long, ``-1`` = never held out, and the scheme's name.

    ``y`` (S,) holds class indices ``0..n_way-1``; every class is assumed present. The name is
    ``"LOO"`` when each fold holds out one example, else ``"<k>-fold"``.
    """
    counts = torch.bincount(y, minlength=n_way)
    evaluable = int((counts[y] >= 2).sum())
    fold = torch.full_like(y, -1)
    if evaluable == 0:
        return fold, "none"
    k = min(KFOLD, max_folds) if int(counts.min()) >= KFOLD_MIN_SHOT else min(evaluable, max_folds)
    k = max(k, 2) if evaluable >= 2 else 1
    dealt = 0
    for c in range(n_way):
        members = (y == c).nonzero().flatten()
        if len(members) < 2:
            continue
        fold[members] = (torch.arange(len(members)) + dealt) % k
        dealt += len(members)
    return fold, "LOO" if k == evaluable else f"{k}-fold"


@torch.no_grad()
def _metric_scores(
    adapter: MetricAdapter, y: torch.Tensor, fold: torch.Tensor, n_way: int
) -> torch.Tensor:
    """Held-out log-probabilities (n, C) of a fitted metric adapter, all folds at once.

    Prototypes without fold ``k``: ``(sum_c - sum_kc) / (n_c - n_kc)``; the scale is refitted on
    the fold's training part (:func:`_fold_scale`).
    """
    z = adapter._features(adapter._x)
    test = (fold >= 0).nonzero().flatten()
    sums = torch.zeros(n_way, z.shape[1]).index_add(0, y, z)
    counts = torch.bincount(y, minlength=n_way).float()
    out = torch.empty(len(test), n_way)
    for k in range(int(fold.max()) + 1):
        rows = (fold[test] == k).nonzero().flatten()
        held = test[rows]
        fold_sums = torch.zeros_like(sums).index_add(0, y[held], z[held])
        fold_counts = torch.bincount(y[held], minlength=n_way).float()
        protos = (sums - fold_sums) / (counts - fold_counts).clamp_min(1)[:, None]
        out[rows] = _fold_scale(adapter, z, y, fold != k, n_way) * similarity(
            z[held], protos, adapter.distance
        )
    return torch.log_softmax(out, 1)


def _fold_scale(
    adapter: MetricAdapter, z: torch.Tensor, y: torch.Tensor, train: torch.Tensor, n_way: int
) -> float:
    """The scale the metric adapter would fit on the training part ``train`` (S,) bool of a fold,
    so that held-out log-likelihoods are honest (the accuracy does not depend on it)."""
    if adapter.fixed_temperature is not None or not adapter.calibrate:
        return adapter.scale
    default = adapter._default_scale(z[train])
    sims, yk = loo_similarity(z[train], y[train], n_way, adapter.distance)
    return fit_scale(sims, yk, n_way, default) if len(yk) else default


@torch.no_grad()
def _memory_scores(
    adapter: MemoryAdapter, x: torch.Tensor, y: torch.Tensor, fold: torch.Tensor, n_way: int
) -> torch.Tensor:
    """Held-out log-probabilities (n, C) of a memory adapter (fitted or not) on support ``x``
    (S, D): each held-out example's attention over the support set, its own fold's slots masked."""
    test = (fold >= 0).nonzero().flatten()
    module = adapter.module
    if module is None:  # untrained: identity projections (see MemoryReadWrite)
        keys, q, scale = l2_normalize(x), x[test], DEFAULT_TEMPERATURE_SCALE
    else:
        keys, q, scale = module.keys(x), module.query_proj(x[test]), float(module.log_scale.exp())
    norm = torch.linalg.vector_norm(q, dim=1, keepdim=True).clamp_min(1e-12)
    logits = (q @ keys.T) * (scale / norm)
    logits = logits.masked_fill(fold[test][:, None] == fold[None, :], float("-inf"))
    evidence = torch.softmax(logits, 1) @ F.one_hot(y, n_way).to(logits.dtype)
    return evidence.clamp_min(1e-12).log()


def refit_cost_s(method: str, n_way: int, dim: int) -> float:
    """Rough seconds for one fit of a refitted candidate (one thread, this project's 2-core CI)."""
    return FIT_OVERHEAD_S + n_way * dim * REFIT_COST_S.get(method, DEFAULT_REFIT_COST_S)


@register_adapter
class AutoAdapter(Adapter):
    """Picks a method per support set by cross-validation (see the module docstring)."""

    name = "auto"
    family = "auto"

    def __init__(
        self,
        *,
        state: Mapping[str, torch.Tensor] | None = None,
        states: Mapping[str, Mapping[str, torch.Tensor] | None] | None = None,
        candidates: Sequence[str] | str | None = None,
        candidate_options: Mapping[str, Mapping[str, Any]] | None = None,
        max_folds: int = MAX_FOLDS,
        budget_s: float = BUDGET_S,
        redecide_fraction: float = REDECIDE_FRACTION,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        states = {k: dict(v) for k, v in (states or {}).items() if v}
        self.states = {**split_states(state, adapter_names()), **states}
        if candidates is None:
            candidates = [*DEFAULT_CANDIDATES, *(m for m in LEARNED_ONLY if m in self.states)]
        elif isinstance(candidates, str):
            candidates = [c.strip() for c in candidates.split(",") if c.strip()]
        self.candidates = list(dict.fromkeys(candidates))
        if not self.candidates:
            raise UsageError("auto needs at least one candidate method.")
        for method in self.candidates:
            if method == self.name:
                raise UsageError("auto cannot be its own candidate.")
            adapter_class(method)  # UsageError naming the known methods
        if max_folds < 2:
            raise UsageError("auto needs max_folds of at least 2.")
        self.candidate_options = {k: dict(v) for k, v in (candidate_options or {}).items()}
        self.max_folds, self.budget_s = max_folds, budget_s
        self.redecide_fraction = redecide_fraction
        self._adapter: Adapter | None = None
        self._chosen = ""
        self._scores: dict[str, float] = {}
        self.log_likelihoods: dict[str, float] = {}
        self.failures: dict[str, str] = {}
        self.scheme = "none"
        self.decision_s = 0.0
        self._decided_size = 0
        self._decided_classes: set[str] = set()
        self._edits = 0

    # --- what was chosen ----------------------------------------------------------------------
    @property
    def chosen(self) -> str:
        """The method now in use ("" before the first fit)."""
        return self._chosen

    @property
    def scores(self) -> dict[str, float]:
        """Held-out support-set accuracy per evaluated candidate (empty when not evaluated)."""
        return dict(self._scores)

    @property
    def adapter(self) -> Adapter | None:
        """The chosen adapter, fitted on the whole support set."""
        return self._adapter

    def describe(self) -> str:
        """One line for the user, e.g. ``auto → memory (LOO accuracy: metric 0.83, memory 0.91)``."""
        if not self._chosen:
            return "auto (no support set yet)"
        if not self._scores:
            why = {"none": "one example per class", "one class": "a single class"}
            detail = f"{why.get(self.scheme, 'not evaluated')}: no evaluation"
        else:
            parts = ", ".join(f"{m} {a:.2f}" for m, a in self._scores.items())
            detail = f"{self.scheme} accuracy: {parts}"
        if self.failures:
            detail += "; failed: " + ", ".join(self.failures)
        return f"auto → {self._chosen} ({detail})"

    # --- the decision -------------------------------------------------------------------------
    def _make(self, method: str) -> Adapter:
        return adapter_class(method)(
            state=self.states.get(method), **self.candidate_options.get(method, {})
        )

    def _decide(self) -> None:
        """Score the candidates on the support set; keep the best one fitted on all of it."""
        started = time.perf_counter()
        y, n_way = self.targets, len(self._classes)
        cost = sum(
            refit_cost_s(m, n_way, self.dim) for m in self.candidates if not self._closed_form(m)
        )
        max_folds = min(self.max_folds, int(self.budget_s / cost) if cost else self.max_folds)
        fold, self.scheme = make_folds(y, n_way, max(2, max_folds))
        self._scores, self.log_likelihoods, self.failures = {}, {}, {}
        fitted: dict[str, Adapter] = {}
        ranked: list[tuple[float, int, float, str]] = []
        if n_way >= 2 and self.scheme != "none":
            for order, method in enumerate(self.candidates):
                try:
                    logp, adapter = self._held_out(method, y, fold, n_way)
                except Exception as err:  # a failing candidate must not break labeling
                    self.failures[method] = str(err) or type(err).__name__
                    continue
                if adapter is not None:
                    fitted[method] = adapter
                truth = y[fold >= 0]
                acc = float((logp.argmax(1) == truth).float().mean())
                ll = float(logp[torch.arange(len(truth)), truth].mean())
                self._scores[method], self.log_likelihoods[method] = acc, ll
                # Another method must classify at least two more held-out examples correctly than
                # the fallback (metric) to replace it: small support sets give noisy accuracies.
                margin = 0.0 if method == FALLBACK else 1.0 / max(1, len(truth))
                ranked.append((-(acc - margin), order, -ll, method))  # ties: list order
        elif n_way < 2:
            self.scheme = "one class"
        ranked.sort()
        fallback = FALLBACK if FALLBACK in self.candidates else self.candidates[0]
        order = [r[3] for r in ranked] or [fallback]
        order += [m for m in self.candidates if m not in order and m not in self.failures]
        self._adapter = None
        for method in order:
            try:
                if method in fitted:
                    self._adapter = fitted[method]
                else:
                    self._adapter = self._make(method).fit(self._x.numpy(), self._labels)
            except Exception as err:
                self.failures[method] = str(err) or type(err).__name__
                continue
            self._chosen = method
            break
        if self._adapter is None:
            raise UsageError(f"auto: every candidate method failed ({self.describe_failures()}).")
        self._decided_size, self._decided_classes = self.support_size, set(self._classes)
        self._edits = 0
        self.decision_s = time.perf_counter() - started

    def describe_failures(self) -> str:
        return "; ".join(f"{m}: {why}" for m, why in self.failures.items())

    def _closed_form(self, method: str) -> bool:
        """Whether ``method`` is scored without refitting (metric, memory)."""
        cls, options = adapter_class(method), self.candidate_options.get(method, {})
        if issubclass(cls, MetricAdapter):
            return not options.get("triplet", False)
        if issubclass(cls, MemoryAdapter):
            return options.get("capacity", 1024) >= self.support_size
        return False

    def _held_out(
        self, method: str, y: torch.Tensor, fold: torch.Tensor, n_way: int
    ) -> tuple[torch.Tensor, Adapter | None]:
        """Log-probabilities (n, C) of the held-out examples (in support order) and, when scoring
        needed one, the candidate fitted on the whole support set."""
        adapter = self._make(method)
        if self._closed_form(method) and isinstance(adapter, MetricAdapter):
            adapter.fit(self._x.numpy(), self._labels)
            return _metric_scores(adapter, y, fold, n_way), adapter
        if self._closed_form(method) and isinstance(adapter, MemoryAdapter):
            return _memory_scores(adapter, self._x, y, fold, n_way), None
        test = (fold >= 0).nonzero().flatten()
        out = torch.empty(len(test), n_way)
        x = self._x.numpy()
        for k in range(int(fold.max()) + 1):
            train = (fold != k).nonzero().flatten().numpy()
            rows = (fold[test] == k).nonzero().flatten()
            part = self._make(method).fit(x[train], [self._labels[i] for i in train])
            columns = [part.classes.index(c) for c in self._classes]
            probs = torch.from_numpy(part.predict_proba(x[test[rows].numpy()]))[:, columns]
            out[rows] = probs.clamp_min(1e-12).log()
        return out, None

    # --- Adapter hooks ------------------------------------------------------------------------
    def _refit(self) -> None:
        self._decide()

    def _needs_decision(self, new_class: bool) -> bool:
        self._edits += 1
        return new_class or self._edits >= self.redecide_fraction * max(self._decided_size, 1)

    def _example_added(self) -> None:
        label = self._labels[-1]
        if self._adapter is None or self._needs_decision(label not in self._decided_classes):
            self._decide()
        else:
            self._adapter.add_example(self._x[-1].numpy(), label)

    def _example_removed(self, index: int) -> None:
        if not self._labels:
            self._adapter, self._chosen, self._scores = None, "", {}
            self._decided_size, self._decided_classes, self._edits = 0, set(), 0
        elif self._adapter is None or self._needs_decision(False):
            self._decide()
        else:
            self._adapter.remove_example(index)

    def feature_kind(self) -> str | None:
        return self._adapter.feature_kind() if self._adapter is not None else None

    def _query_features(self, queries: torch.Tensor) -> torch.Tensor:
        assert self._adapter is not None
        return self._adapter._query_features(queries)

    def _logits(self, queries: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        assert self._adapter is not None
        columns = [self._adapter.classes.index(c) for c in self._classes]
        return self._adapter._logits(queries, features)[:, columns]

    def _read_done(self) -> None:
        if self._adapter is not None:
            self._adapter._read_done()

    # --- save / restore -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out.update(
            chosen=self._chosen,
            chosen_state=self._adapter.state_dict() if self._adapter is not None else None,
            scores=dict(self._scores),
            log_likelihoods=dict(self.log_likelihoods),
            failures=dict(self.failures),
            scheme=self.scheme,
            decided_size=self._decided_size,
            decided_classes=sorted(self._decided_classes),
            edits=self._edits,
        )
        return out

    def load_state(self, state: Mapping[str, Any]) -> AutoAdapter:
        super().load_state(state)
        self._chosen = state["chosen"]
        self._adapter = None
        if state["chosen_state"] is not None:
            self._adapter = self._make(self._chosen).load_state(state["chosen_state"])
        self._scores = dict(state["scores"])
        self.log_likelihoods = dict(state["log_likelihoods"])
        self.failures = dict(state["failures"])
        self.scheme = state["scheme"]
        self._decided_size = state["decided_size"]
        self._decided_classes = set(state["decided_classes"])
        self._edits = state["edits"]
        return self


def split_states(
    state: Mapping[str, Any] | None, methods: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``{"metric.log_scale": t, …}`` → ``{"metric": {"log_scale": t}, …}`` for ``methods``.

    Keys without a known ``"<method>."`` prefix are ignored: an unprefixed state cannot be
    attributed to a method (pass ``states={method: state}`` for that).
    """
    out: dict[str, dict[str, Any]] = {}
    for key, value in (state or {}).items():
        method, dot, rest = key.partition(".")
        if dot and method in methods:
            out.setdefault(method, {})[rest] = value
    return out
