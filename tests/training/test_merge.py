"""One checkpoint for every family: merging adapter states and handing each method its part."""

from __future__ import annotations

import pytest
import torch

from fewshot_gui.core.device import plan_device
from fewshot_gui.core.errors import CheckpointError
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.checkpoint import build_architecture, save_checkpoint
from fewshot_gui.encoders.registry import load_encoder
from fewshot_gui.training.merge import merge_checkpoints

KWARGS = {"in_channels": 1}


def _save(path, encoder_state, method, state):
    return save_checkpoint(
        path,
        arch_name="conv4",
        arch_kwargs=KWARGS,
        preprocessing=Preprocessing(resize=28, crop=28, mean=(0.5,), std=(0.5,), channels=1),
        embed_dim=64,
        encoder_state=encoder_state,
        adapter_method=method,
        adapter_state=state,
        metadata={"command": f"meta-train --method {method}"},
    )


def test_merge_and_per_method_state(tmp_path):
    torch.manual_seed(0)
    encoder = build_architecture("conv4", KWARGS).state_dict()
    base = _save(tmp_path / "metric.pt", encoder, "metric", {"log_scale": torch.tensor(2.0)})
    other = _save(tmp_path / "memory.pt", encoder, "memory", {"log_scale": torch.tensor(3.0)})
    merged = merge_checkpoints(tmp_path / "all.pt", base, [other], half=False)
    plan = plan_device("cpu")
    memory = load_encoder(str(merged), plan, method="memory")
    assert memory.adapter_method == "memory"
    assert float(memory.adapter_state["log_scale"]) == 3.0
    assert float(load_encoder(str(merged), plan, method="metric").adapter_state["log_scale"]) == 2.0
    assert load_encoder(str(merged), plan, method="anil").adapter_state is None
    auto = load_encoder(str(merged), plan, method="auto").adapter_state
    assert set(auto) == {"metric.log_scale", "memory.log_scale"}
    assert set(memory.metadata["adapters"]) == {"metric", "memory"}


def test_merge_refuses_a_different_encoder(tmp_path):
    torch.manual_seed(0)
    base = _save(tmp_path / "a.pt", build_architecture("conv4", KWARGS).state_dict(), "metric", {})
    other = _save(tmp_path / "b.pt", build_architecture("conv4", KWARGS).state_dict(), "memory", {})
    with pytest.raises(CheckpointError, match="encoder differs"):
        merge_checkpoints(tmp_path / "all.pt", base, [other])
