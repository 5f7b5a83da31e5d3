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


def test_device_loader_counts_follow_the_environment_and_the_platform(monkeypatch) -> None:
    import multiprocessing
    import sys

    from fewshot_gui.core import device

    monkeypatch.setenv("FEWSHOT_READER_PROCESSES", "0")
    assert device._env_count("FEWSHOT_READER_PROCESSES", 6, minimum=0) == 0
    monkeypatch.setenv("FEWSHOT_DECODE_THREADS", "many")
    assert device._env_count("FEWSHOT_DECODE_THREADS", 2) == 2  # unreadable: the default
    monkeypatch.setenv("FEWSHOT_DECODE_THREADS", "-3")
    assert device._env_count("FEWSHOT_DECODE_THREADS", 2) == 1
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert device._reader_processes() == 0  # a frozen app reads in threads
    monkeypatch.delattr(sys, "frozen")
    monkeypatch.setattr(device, "cpu_count", lambda: 16)
    expected = 6 if "forkserver" in multiprocessing.get_all_start_methods() else 0
    assert device._reader_processes() == expected
