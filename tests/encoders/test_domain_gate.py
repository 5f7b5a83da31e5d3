"""Domain gate: tasks from the tuning domain use the tuned encoder, others the base features."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_gui.encoders.domain_gate import DomainGate, unit_rows


def _domain(rng: np.random.Generator, center: np.ndarray, n: int) -> np.ndarray:
    return center + 0.3 * rng.standard_normal((n, center.size)).astype(np.float32)


@pytest.fixture
def domains() -> tuple[DomainGate, np.ndarray, np.ndarray]:
    """A gate fitted on domain A (class centroids around one direction), images of A and of B."""
    rng = np.random.default_rng(0)
    a_dir, b_dir = np.eye(32, dtype=np.float32)[0], np.eye(32, dtype=np.float32)[1]
    centroids = np.stack(
        [a_dir + 0.4 * rng.standard_normal(32).astype(np.float32) for _ in range(8)]
    )
    gate = DomainGate("base", unit_rows(centroids), threshold=0.5)
    return gate, _domain(rng, 3 * a_dir, 20), _domain(rng, 3 * b_dir, 20)


def test_tasks_of_the_tuning_domain_use_the_tuned_encoder(domains) -> None:
    gate, a, b = domains
    assert gate.in_domain(a[:5]) and gate.score(a[:5]) > gate.threshold
    assert not gate.in_domain(b[:5]) and gate.score(b[:5]) < gate.threshold
    assert not gate.in_domain(np.zeros((0, 32), np.float32))  # no examples: the safe side


def test_reason_names_the_choice_in_plain_words(domains) -> None:
    gate, a, b = domains
    assert "tuned features are used" in gate.reason(a[:5], "photos")
    assert "plain ImageNet features (base)" in gate.reason(b[:5], "photos")


def test_round_trip_through_checkpoint_form_and_malformed_forms(domains) -> None:
    gate = domains[0]
    back = DomainGate.from_dict(gate.to_dict())
    assert back is not None and back.base == "base" and back.threshold == pytest.approx(0.5)
    np.testing.assert_allclose(back.bank, gate.bank, atol=2e-3)  # stored in half precision
    assert DomainGate.from_dict(None) is None
    assert DomainGate.from_dict({"base": "x"}) is None
    assert DomainGate.from_dict({"base": "x", "bank": [[np.nan]], "threshold": 0.5}) is None
    assert DomainGate.from_dict({"base": "x", "bank": [1.0, 2.0], "threshold": 0.5}) is None
