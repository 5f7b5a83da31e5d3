"""Domain gate: use a meta-tuned encoder only for tasks that look like the domain it was tuned on.

Meta-fine-tuning ImageNet features on one domain (flowers) makes them better there and worse
elsewhere (textures: 60 % vs 65 % 5-way 1-shot). The gate makes "no negative transfer" a property
of the design: the user's examples (the support set) are embedded by the *base* encoder (the
ImageNet weights the tuning started from); each example's domain score is its highest cosine
similarity to the tuning domain's class centroids ``bank`` in those same base features; when the
examples' mean score reaches ``threshold`` the task is in the tuning domain and the meta-tuned
encoder labels it, otherwise the base encoder does.

The bank and threshold are fitted from the tuning data alone (training classes for the bank, the
checkpoint's validation classes for the threshold, see :mod:`fewshot_gui.training.domain_gate`);
no other domain is looked at. The decision is made once per labeling session, from its first
support set, so the encoder does not change under a user who is correcting labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``(N, D)`` rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class DomainGate:
    """``bank``: ``(C, D)`` unit-norm class centroids of the tuning domain in ``base`` features."""

    base: str
    bank: np.ndarray
    threshold: float
    fitted_on: str = ""

    def image_scores(self, support: np.ndarray) -> np.ndarray:
        """``(N, D)`` base-encoder embeddings → ``(N,)`` highest cosine to a bank centroid."""
        if len(support) == 0:
            return np.zeros(0, np.float32)
        return (unit_rows(support) @ self.bank.T).max(axis=1)

    def score(self, support: np.ndarray) -> float:
        """The task's domain score: the mean of its examples' scores (0 for no examples)."""
        scores = self.image_scores(support)
        return float(scores.mean()) if scores.size else 0.0

    def in_domain(self, support: np.ndarray) -> bool:
        """True when the meta-tuned encoder should label this task."""
        return len(support) > 0 and self.score(support) >= self.threshold

    def reason(self, support: np.ndarray, tuned: str) -> str:
        """One plain sentence saying which features label the task and why."""
        score = self.score(support)
        if score >= self.threshold:
            return (
                f"{tuned}: your examples look like the images it was tuned on "
                f"(similarity {score:.2f} ≥ {self.threshold:.2f}), so its tuned features are used"
            )
        return (
            f"{tuned}: your examples do not look like the images it was tuned on (similarity "
            f"{score:.2f} < {self.threshold:.2f}), so plain ImageNet features ({self.base}) are used"
        )

    # ------------------------------------------------------------------ checkpoint form
    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "bank": np.asarray(self.bank, np.float16),
            "threshold": float(self.threshold),
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DomainGate | None:
        """The gate stored in a checkpoint's metadata, or None when absent or malformed."""
        if not isinstance(data, dict):
            return None
        try:
            bank = np.asarray(
                data["bank"].numpy() if hasattr(data["bank"], "numpy") else data["bank"],
                np.float32,
            )
            if bank.ndim != 2 or not np.isfinite(bank).all():
                return None
            return cls(
                str(data["base"]),
                unit_rows(bank),
                float(data["threshold"]),
                str(data.get("fitted_on", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None
