"""Memory family: an external key-value memory read by attention (after MANN, Santoro et al. 2016).

Write: each support embedding becomes a *key* (through a learned key projection, L2-normalised) in a
slot whose *value* is its class. The memory has ``capacity`` slots; when it is full a write
overwrites the least-used slot (MANN's LRUA): every slot has a usage counter, decayed by ``gamma`` at
each event and increased by 1 when written and by its attention weight when read (each read adds a
total of 1, the mean attention over the queries of one ``predict_proba``).

Read: a query goes through the learned query projection, its cosine similarity to every key is
sharpened by a learned temperature, a softmax over slots gives the attention, and the attention
summed per class value is the class evidence (rows sum to 1), i.e. the probabilities.

:class:`MemoryReadWrite` holds the projections and the log-temperature and is differentiable for
meta-training: ``forward(support (S, D), support_y (S,), query (Q, D), n_way) -> logits (Q, n_way)``
(log class evidence). With ``proj_dim == D`` the projections start as the identity, so an untrained
memory is nearest-neighbour attention. Meta-training trains it (:meth:`MemoryAdapter.learner`,
projections to at most 256 dimensions: small files, fast reads) and the adapter's ``state`` is its
``state_dict()``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fewshot_gui.adapters.base import Adapter, l2_normalize
from fewshot_gui.core.errors import UsageError

DEFAULT_TEMPERATURE_SCALE = 10.0


class MemoryReadWrite(nn.Module):
    """Learned key/query projections (D → P) and log inverse temperature of the memory read."""

    def __init__(self, dim: int, proj_dim: int | None = None, scale: float = 10.0) -> None:
        super().__init__()
        proj_dim = proj_dim or dim
        self.key_proj = nn.Linear(dim, proj_dim, bias=False)
        self.query_proj = nn.Linear(dim, proj_dim, bias=False)
        if proj_dim == dim:
            nn.init.eye_(self.key_proj.weight)
            nn.init.eye_(self.query_proj.weight)
        else:
            gen = torch.Generator().manual_seed(0)
            w = torch.randn(proj_dim, dim, generator=gen) / math.sqrt(dim)
            self.key_proj.weight.data.copy_(w)
            self.query_proj.weight.data.copy_(w)
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> MemoryReadWrite:
        proj_dim, dim = state["key_proj.weight"].shape
        module = cls(dim, proj_dim)
        module.load_state_dict({k: v.float() for k, v in state.items()})
        return module

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Memory keys (S, P), unit norm, for embeddings ``x`` (S, D)."""
        return l2_normalize(self.key_proj(x))

    def attention(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Attention (Q, M) of ``query`` (Q, D) over unit ``keys`` (M, P)."""
        w = self.query_proj.weight
        identity = w.shape[0] == w.shape[1] and not torch.is_grad_enabled()
        if not (identity and torch.equal(w, torch.eye(len(w)))):
            query = self.query_proj(query)  # skipped when untrained: a (D, D) product per query
        norm = torch.linalg.vector_norm(query, dim=1, keepdim=True).clamp_min(1e-12)
        return torch.softmax((query @ keys.T) * (self.log_scale.exp() / norm), dim=1)

    def forward(
        self, support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, n_way: int
    ) -> torch.Tensor:
        """Write ``support`` (S, D) with values ``support_y`` (S,), read ``query`` (Q, D).

        Returns logits (Q, n_way) = log class evidence (use with cross-entropy).
        """
        att = self.attention(query, self.keys(support))
        evidence = att @ F.one_hot(support_y, n_way).to(att.dtype)
        return evidence.clamp_min(1e-12).log()


class MemoryAdapter(Adapter):
    """Key-value memory with LRU replacement (see the module docstring)."""

    name = "memory"
    family = "memory"
    help = "key-value memory of every example"
    order = 20
    auto = "default"

    @classmethod
    def learner(cls, dim: int, *, proj_dim: int | None = None) -> MemoryReadWrite:
        return MemoryReadWrite(dim, proj_dim or min(dim, 256))

    def __init__(
        self,
        *,
        state: dict[str, torch.Tensor] | None = None,
        capacity: int = 1024,
        gamma: float = 0.95,
        **options: Any,
    ) -> None:
        super().__init__(state=state, **options)
        if capacity < 1:
            raise UsageError("The memory capacity must be at least 1.")
        self.capacity, self.gamma = capacity, gamma
        self.module = MemoryReadWrite.from_state(self._state) if self._state else None
        self._identity_query: bool | None = None  # of self.module, found on first use
        self._reset_memory(0)

    # --- memory slots -----------------------------------------------------------------------
    def _reset_memory(self, proj_dim: int) -> None:
        self.keys = torch.zeros(self.capacity, proj_dim)
        self.usage = torch.zeros(self.capacity)
        self.slot_label: list[str | None] = [None] * self.capacity
        self.slot_example = [-1] * self.capacity  # support index held by each slot, -1 when free
        self._pending_read: torch.Tensor | None = None

    def _write(self, example: int) -> int:
        """Write support example ``example`` into a free slot or over the least-used one."""
        assert self.module is not None
        free = [i for i, e in enumerate(self.slot_example) if e < 0]
        slot = free[0] if free else int(torch.argmin(self.usage))
        with torch.no_grad():
            self.keys[slot] = self.module.keys(self._x[example : example + 1])[0]
        self.usage.mul_(self.gamma)
        self.usage[slot] = 1.0
        self.slot_label[slot], self.slot_example[slot] = self._labels[example], example
        return slot

    @property
    def occupied(self) -> list[int]:
        """Indices of slots that hold an example."""
        return [i for i, e in enumerate(self.slot_example) if e >= 0]

    # --- Adapter hooks ------------------------------------------------------------------------
    def _refit(self) -> None:
        if self.module is None or self.module.key_proj.in_features != self.dim:
            if self._state:
                raise UsageError(
                    f"The memory state expects {self.module.key_proj.in_features}-d embeddings, "
                    f"got {self.dim}-d."
                )
            self.module = MemoryReadWrite(self.dim)
            self._identity_query = None
        self._reset_memory(self.module.key_proj.out_features)
        for i in range(self.support_size):
            self._write(i)

    def _example_added(self) -> None:
        self._write(self.support_size - 1)

    def _example_removed(self, index: int) -> None:
        for slot, e in enumerate(self.slot_example):
            if e == index:
                self.slot_example[slot], self.slot_label[slot] = -1, None
                self.usage[slot] = 0.0
            elif e > index:
                self.slot_example[slot] = e - 1

    def feature_kind(self) -> str:
        """Untrained (identity) query projection: the inverse norm; else the projected query."""
        assert self.module is not None
        w = self.module.query_proj.weight
        if self._identity_query is None:
            self._identity_query = w.shape[0] == w.shape[1] and torch.equal(w, torch.eye(len(w)))
        return "inverse-norm" if self._identity_query else "memory-query-projection"

    def _query_features(self, queries: torch.Tensor) -> torch.Tensor:
        if self.feature_kind() == "inverse-norm":
            return super()._query_features(queries)
        assert self.module is not None
        return l2_normalize(self.module.query_proj(queries))  # (Q, P), unit rows

    def _logits(self, queries: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        assert self.module is not None and features is not None
        slots = self.occupied
        keys = self.keys[slots]
        # features: the inverse norms (identity projection) or the projected unit queries
        identity = self.feature_kind() == "inverse-norm"
        sims = (queries @ keys.T) * features if identity else features @ keys.T
        att = torch.softmax(sims * self.module.log_scale.exp(), dim=1)
        read = att.sum(0)
        self._pending_read = read if self._pending_read is None else self._pending_read + read
        index = {c: i for i, c in enumerate(self._classes)}
        values = torch.tensor([index[self.slot_label[s]] for s in slots])
        evidence = att @ F.one_hot(values, len(self._classes)).to(att.dtype)
        return evidence.clamp_min(1e-12).log()

    def _read_done(self) -> None:
        if self._pending_read is None:
            return
        read, self._pending_read = self._pending_read, None
        self.usage.mul_(self.gamma)
        self.usage[self.occupied] += read / read.sum().clamp_min(1e-12)

    # --- save / restore -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        assert self.module is not None
        out.update(
            module={k: v.clone() for k, v in self.module.state_dict().items()},
            keys=self.keys.clone(),
            usage=self.usage.clone(),
            slot_label=list(self.slot_label),
            slot_example=list(self.slot_example),
            capacity=self.capacity,
            gamma=self.gamma,
        )
        return out

    def load_state(self, state: dict[str, Any]) -> MemoryAdapter:
        super().load_state(state)
        self.capacity, self.gamma = state["capacity"], state["gamma"]
        self.module = MemoryReadWrite.from_state(state["module"])
        self._identity_query = None
        self.keys, self.usage = state["keys"].clone(), state["usage"].clone()
        self.slot_label, self.slot_example = list(state["slot_label"]), list(state["slot_example"])
        self._pending_read = None
        return self
