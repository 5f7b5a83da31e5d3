"""``auto``: choose the adapter per task by cross-validation on the support set — but only on
strong evidence, so that reviewing a folder never makes it worse.

``metric`` (its prototypes centred: :data:`CANDIDATE_OPTIONS`) is the method in use until another
candidate (``candidates``; default: the methods whose class says ``auto = "default"`` — metric,
memory, anil as the fast stand-in for the MAML family — and those with ``auto = "learned"`` when a
meta-learned state for them is given: metalstm) is *clearly* better than the method in use, on
the *same* held-out examples of the support set. Clearly better means all of:

* **enough evidence**: every class has at least ``MIN_SHOT`` examples, at least ``MIN_HELD_OUT``
  examples are held out, in ``MIN_FOLDS`` folds or more (a candidate too slow to refit that often
  within ``budget_s`` is not compared at all, rather than on fewer folds);
* **a margin beyond the noise**: a paired (McNemar) comparison on the held-out examples, ``b``
  examples right only for the challenger, ``c`` right only for the method in use:
  ``b - c >= max(MIN_GAIN_EXAMPLES, MIN_GAIN * n, Z * sqrt(b + c))``.

Hysteresis: the same test decides every later switch, from the method in use (switching back needs
the same strong evidence), so on ambiguous evidence the choice stays put. When the evidence is
missing (too few examples, a new class) the method in use is kept. Why (measured with
``benchmarks/review_loop.py``, issue 13): the previous rule (best held-out accuracy, ties to metric)
switched on 2-fold estimates of a few dozen examples chosen by the review itself (least confident
first), and one switch lost 40 points of folder accuracy.

Calibration: the chosen method's logits are scaled by a temperature fitted on its held-out
predictions (:func:`~fewshot_gui.adapters.metric.fit_scale`, class-balanced NLL with a prior at 1),
so confidences stay comparable across a switch; metric calibrates itself (leave-one-out) and is not
rescaled.

Folds (:func:`make_folds`): examples of classes with a single example are never held out. When
every class has at least ``KFOLD_MIN_SHOT`` examples, a stratified ``KFOLD``-fold split is used;
otherwise leave-one-out capped at ``max_folds`` folds (examples dealt round-robin class by class,
so no fold takes a class's last example). Metric and memory are scored in closed form on all folds
at once, the others by refitting on each fold (:func:`refit_cost_s` estimates the time).

The decision is remade on :meth:`~Adapter.add_example` / :meth:`~Adapter.remove_example` only when
a class appeared or the support set changed by ``redecide_fraction`` since the last decision;
otherwise the edit is forwarded to the chosen adapter, which keeps live re-labeling fast.
:meth:`AutoAdapter.reason` says in one plain sentence what was chosen and why;
:meth:`AutoAdapter.describe` adds the held-out accuracies on one line (logs, tooltips) and
:meth:`AutoAdapter.details` gives every figure and rule, one per line.

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

from fewshot_gui.adapters.base import Adapter
from fewshot_gui.adapters.held_out import (
    MAX_FOLDS,
    MIN_GAIN,
    Z,
    clearly_better,
    make_folds,
    memory_scores,
    metric_scores,
    refit_cost_s,
)
from fewshot_gui.adapters.memory import MemoryAdapter
from fewshot_gui.adapters.metric import MetricAdapter, fit_scale
from fewshot_gui.adapters.registry import adapter_class, adapter_names, auto_candidates
from fewshot_gui.core.errors import UsageError

FALLBACK = "metric"
CANDIDATE_OPTIONS = {"metric": {"center": 0.75}}
"""Options auto gives a candidate unless ``candidate_options`` names it: metric's prototypes
centred (see :mod:`~fewshot_gui.adapters.metric`; measured with ``benchmarks/review_loop.py``:
on 10-way 1-shot Flowers the largest fall of folder accuracy from one action went from 2.7–5.3 to
1.1–1.4 points, first labeling 1–4 points higher)."""
MIN_SHOT = 3
"""Examples every class needs before methods are compared (two are left to learn from)."""
MIN_HELD_OUT = 30
"""Held-out examples needed before methods are compared."""
MIN_FOLDS = 5
"""Folds needed for a comparison: with fewer, each fold's model learns from half the examples."""
REDECIDE_FRACTION = 0.2
BUDGET_S = 0.5
"""Estimated seconds of refitting per decision; candidates that do not fit ``MIN_FOLDS`` folds in
it are not compared."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class AutoAdapter(Adapter):
    """Picks a method per support set on strong evidence only (see the module docstring)."""

    name = "auto"
    family = "auto"
    help = "pick the method automatically"
    order = 90

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
            learned = [m for m in auto_candidates(learned=True) if m in self.states]
            candidates = [*auto_candidates(), *learned]
        elif isinstance(candidates, str):
            candidates = [c.strip() for c in candidates.split(",") if c.strip()]
        self.candidates = list(dict.fromkeys(candidates))
        if not self.candidates:
            raise UsageError("auto needs at least one candidate method.")
        for method in self.candidates:
            if method == self.name:
                raise UsageError("auto cannot be its own candidate.")
            adapter_class(method)  # UsageError naming the known methods
        if max_folds < MIN_FOLDS:
            raise UsageError(f"auto needs max_folds of at least {MIN_FOLDS}.")
        given = {k: dict(v) for k, v in (candidate_options or {}).items()}
        self.candidate_options = {**CANDIDATE_OPTIONS, **given}
        self.max_folds, self.budget_s = max_folds, budget_s
        self.redecide_fraction = redecide_fraction
        self._adapter: Adapter | None = None
        self._chosen = ""
        self._scores: dict[str, float] = {}
        self.log_likelihoods: dict[str, float] = {}
        self.failures: dict[str, str] = {}
        self.skipped: list[str] = []  # candidates too slow to compare on enough folds
        self.scheme = "none"
        self.held_out = 0  # examples held out in the last comparison
        self.switched_from = ""  # the method replaced by the last decision ("" if none)
        self.temperature_scale = 1.0  # multiplies the chosen adapter's logits
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
        """Held-out support-set accuracy per compared candidate (empty when none was compared)."""
        return dict(self._scores)

    @property
    def adapter(self) -> Adapter | None:
        """The chosen adapter, fitted on the whole support set."""
        return self._adapter

    def describe(self) -> str:
        """One line for logs and tooltips: the reason and the held-out accuracies, e.g.
        ``auto → metric: the other … on your 40 examples (held-out, 5-fold: metric 93%, …)``."""
        text = f"auto → {self.reason()}"
        if self._scores:
            parts = ", ".join(f"{m} {a:.0%}" for m, a in self._scores.items())
            text += f" (held-out, {self.scheme}: {parts})"
        if self.failures:
            text += f"; failed: {', '.join(self.failures)}"
        return text

    def reason(self) -> str:
        """What is in use and why, in one plain sentence (shown under the method chooser)."""
        chosen, n = self._chosen, self.held_out
        if not chosen:
            return "no examples yet"
        if self.scheme == "one class":
            return f"{chosen}: a single class, nothing to compare"
        if not self._scores:
            counts = [self._labels.count(c) for c in self._classes]
            if min(counts, default=0) < MIN_SHOT:
                need = f"every class has {MIN_SHOT} examples"
            else:
                need = f"you have {MIN_HELD_OUT} examples"
            if chosen != self._incumbent_default():
                return f"{chosen}: kept until methods can be compared again (once {need})"
            return f"{chosen}: methods are compared once {need}"
        if self.switched_from:
            right = {m: round(a * n) for m, a in self._scores.items()}
            return (
                f"{chosen}: clearly better than {self.switched_from} on your "
                f"{_plural(n, 'example')} ({right[chosen]} vs {right[self.switched_from]} right)"
            )
        return (
            f"{chosen}: the other methods were not clearly better on your {_plural(n, 'example')}"
        )

    def details(self) -> str:
        """The figures and rules behind :meth:`reason`, one per line."""
        lines = []
        if self._scores:
            parts = ", ".join(f"{m} {a:.0%}" for m, a in self._scores.items())
            lines.append(f"Held-out accuracy ({self.scheme}, {self.held_out} examples): {parts}.")
            lines.append(
                "A method replaces the one in use only when it is right on clearly more of the "
                f"same examples (at least {MIN_GAIN:.0%} more, beyond {Z:g}× the noise)."
            )
        else:
            lines.append(
                f"Methods are compared once every class has {MIN_SHOT} examples and there are "
                f"{MIN_HELD_OUT} in all; until then the method in use is kept."
            )
        center = self.candidate_options.get(FALLBACK, {}).get("center")
        if center and FALLBACK in self.candidates:
            lines.append(f"{FALLBACK}: prototypes centred (×{center:g} of the mean direction).")
        if self.temperature_scale != 1.0:
            lines.append(f"Confidences rescaled ×{self.temperature_scale:.2f} (held-out fit).")
        if self.skipped:
            lines.append(
                "Not compared (too slow to check on enough folds): " + ", ".join(self.skipped) + "."
            )
        if self.failures:
            lines.append("Failed: " + self.describe_failures() + ".")
        return "\n".join(lines)

    def describe_failures(self) -> str:
        return "; ".join(f"{m}: {why}" for m, why in self.failures.items())

    # --- the decision -------------------------------------------------------------------------
    def _make(self, method: str) -> Adapter:
        return adapter_class(method)(
            state=self.states.get(method), **self.candidate_options.get(method, {})
        )

    def _incumbent_default(self) -> str:
        return FALLBACK if FALLBACK in self.candidates else self.candidates[0]

    def _incumbent(self) -> str:
        return self._chosen if self._chosen in self.candidates else self._incumbent_default()

    def _enough_evidence(self, y: torch.Tensor, n_way: int) -> bool:
        counts = torch.bincount(y, minlength=n_way)
        return n_way >= 2 and int(counts.min()) >= MIN_SHOT and len(y) >= MIN_HELD_OUT

    def _affordable(self, n_way: int, incumbent: str) -> tuple[list[str], int]:
        """The candidates to compare and the fold count: refitted challengers are dropped, most
        expensive first, until ``MIN_FOLDS`` folds of them fit in ``budget_s``."""
        cost = {
            m: 0.0 if self._closed_form(m) else refit_cost_s(m, n_way, self.dim)
            for m in self.candidates
        }
        keep = list(self.candidates)
        while sum(cost[m] for m in keep) * MIN_FOLDS > self.budget_s and len(keep) > 1:
            keep.remove(max((m for m in keep if m != incumbent), key=lambda m: cost[m]))
        total = sum(cost[m] for m in keep)
        folds = self.max_folds if total == 0 else int(self.budget_s / total)
        return keep, max(MIN_FOLDS, min(self.max_folds, folds))

    def _decide(self) -> None:
        """Compare the candidates on held-out examples; switch only on strong evidence."""
        started = time.perf_counter()
        y, n_way = self.targets, len(self._classes)
        incumbent = self._incumbent()
        self._scores, self.log_likelihoods, self.failures, self.skipped = {}, {}, {}, []
        self.scheme, self.held_out, self.switched_from = "none", 0, ""
        fitted: dict[str, Adapter] = {}
        logps: dict[str, torch.Tensor] = {}
        choice, truth = incumbent, None
        if n_way < 2:
            self.scheme = "one class"
        elif self._enough_evidence(y, n_way):
            compared, folds = self._affordable(n_way, incumbent)
            self.skipped = [m for m in self.candidates if m not in compared]
            fold, self.scheme = make_folds(y, n_way, folds)
            truth = y[fold >= 0]
            self.held_out = len(truth)
            for method in compared:
                try:
                    logp, adapter = self._held_out(method, y, fold, n_way)
                except Exception as err:  # a failing candidate must not break labeling
                    self.failures[method] = str(err) or type(err).__name__
                    continue
                if adapter is not None:
                    fitted[method] = adapter
                logps[method] = logp
                self._scores[method] = float((logp.argmax(1) == truth).float().mean())
                self.log_likelihoods[method] = float(logp[torch.arange(len(truth)), truth].mean())
            choice = self._challenge(incumbent, logps, truth)
            if choice != incumbent:
                self.switched_from = incumbent
        self._install(choice, fitted, logps, truth)
        self._decided_size, self._decided_classes = self.support_size, set(self._classes)
        self._edits = 0
        self.decision_s = time.perf_counter() - started

    def _challenge(
        self, incumbent: str, logps: Mapping[str, torch.Tensor], truth: torch.Tensor
    ) -> str:
        """The method to use: ``incumbent`` unless a candidate is clearly better (the clearest)."""
        if incumbent not in logps:  # it failed: the first candidate that could be scored
            incumbent = next((m for m in self.candidates if m in logps), incumbent)
            if incumbent not in logps:
                return incumbent
        right = {m: logp.argmax(1) == truth for m, logp in logps.items()}
        best, best_gain = incumbent, 0
        for method in logps:
            gain = int(right[method].sum()) - int(right[incumbent].sum())
            if gain > best_gain and clearly_better(right[method], right[incumbent]):
                best, best_gain = method, gain
        return best

    def _install(
        self,
        choice: str,
        fitted: Mapping[str, Adapter],
        logps: Mapping[str, torch.Tensor],
        truth: torch.Tensor | None,
    ) -> None:
        """Fit ``choice`` on the whole support set (the next candidate if it fails) and its
        temperature on its held-out predictions."""
        previous = self._chosen
        order = [choice, *(m for m in self.candidates if m != choice and m not in self.failures)]
        self._adapter = None
        for method in order:
            try:
                adapter = fitted.get(method) or self._make(method).fit(
                    self._x.numpy(), self._labels, self._weights
                )
            except Exception as err:
                self.failures[method] = str(err) or type(err).__name__
                continue
            self._adapter, self._chosen = adapter, method
            break
        if self._adapter is None:
            raise UsageError(f"auto: every candidate method failed ({self.describe_failures()}).")
        if isinstance(self._adapter, MetricAdapter):  # calibrated by leave-one-out already
            self.temperature_scale = 1.0
        elif truth is not None and self._chosen in logps:
            logp = logps[self._chosen]
            self.temperature_scale = fit_scale(logp, truth, len(self._classes), 1.0)
        elif self._chosen != previous:
            self.temperature_scale = 1.0

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
            adapter.fit(self._x.numpy(), self._labels, self._weights)
            return metric_scores(adapter, y, fold, n_way), adapter
        if self._closed_form(method) and isinstance(adapter, MemoryAdapter):
            return memory_scores(adapter, self._x, y, fold, n_way), None
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
            self._adapter.add_example(self._x[-1].numpy(), label, self._weights[-1])

    def _example_removed(self, index: int) -> None:
        if not self._labels:
            self._adapter, self._chosen, self._scores = None, "", {}
            self.temperature_scale, self.switched_from, self.held_out = 1.0, "", 0
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
        logits = self._adapter._logits(queries, features)[:, columns]
        return logits if self.temperature_scale == 1.0 else logits * self.temperature_scale

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
            held_out=self.held_out,
            switched_from=self.switched_from,
            skipped=list(self.skipped),
            temperature_scale=self.temperature_scale,
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
        self.held_out = int(state.get("held_out", 0))
        self.switched_from = str(state.get("switched_from", ""))
        self.skipped = list(state.get("skipped", []))
        self.temperature_scale = float(state.get("temperature_scale", 1.0))
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
