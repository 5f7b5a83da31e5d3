"""Plain types and the device plan."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_gui.core.device import plan_device
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import UNKNOWN, Predictions, Progress


def test_predictions_apply_unknown_threshold():
    probs = np.array([[0.9, 0.1], [0.55, 0.45]])
    plain = Predictions.from_probabilities(["a", "b"], ["cat", "dog"], probs)
    assert plain.labels == ["cat", "cat"]
    gated = Predictions.from_probabilities(["a", "b"], ["cat", "dog"], probs, unknown_threshold=0.6)
    assert gated.labels == ["cat", UNKNOWN]
    np.testing.assert_allclose(gated.confidences, [0.9, 0.55])


def test_progress_fraction():
    assert Progress(5, 10).fraction == 0.5
    assert Progress(0, 0).fraction == 1.0


def test_cpu_plan_and_bad_requests():
    plan = plan_device("cpu")
    assert plan.device.type == "cpu" and plan.batch_size >= 4 and plan.autocast_dtype is None
    assert plan_device("auto").name  # always something to show the user
    with pytest.raises(UsageError, match="unknown device"):
        plan_device("tpu")
