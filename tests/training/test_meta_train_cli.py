"""Meta-training and evaluation end to end through the CLI, on tiny synthetic class folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fewshot_gui.cli import main
from fewshot_gui.encoders.checkpoint import load_checkpoint
from fewshot_gui.training.meta_train import MetaTrainConfig, meta_train, run_meta_training

METHODS = ["metric", "memory", "maml", "fomaml", "anil", "metasgd"]


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def patterns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 classes of 16×16 colored stripe patterns, 10 noisy images each."""
    root = tmp_path_factory.mktemp("patterns")
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, (8, 3))
    for c in range(8):
        for i in range(10):
            array = np.zeros((16, 16, 3), np.int64) + colors[c] // 3
            if c % 2:
                array[:, (c // 2) * 4 : (c // 2) * 4 + 4] = colors[c]
            else:
                array[(c // 2) * 4 : (c // 2) * 4 + 4, :] = colors[c]
            array = np.clip(array + rng.integers(-25, 25, array.shape), 0, 255).astype(np.uint8)
            path = root / f"class{c}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path)
    return root


def train_args(data: Path, out: Path, method: str, *extra: str) -> list[str]:
    options = (
        "--backbone conv4 --way 3 --shot 1 --query 2 --episodes 4 --image-size 16 --val-every 2 "
        "--val-episodes 2 --val-fraction 0.25 --inner-steps 2 --threads 1 --seed 3"
    )
    return [
        "meta-train",
        str(data),
        "--method",
        method,
        "--out",
        str(out),
        *options.split(),
        *extra,
    ]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_and_evaluates(
    method: str, patterns: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{method}.pt"
    assert main(train_args(patterns, out, method)) == 0
    ckpt = load_checkpoint(out)
    meta = ckpt["metadata"]
    assert ckpt["adapter"]["method"] == method and meta["method"] == method
    assert meta["backbone"] == "conv4" and meta["way"] == 3 and meta["seed"] == 3
    assert 0.0 <= meta["val_accuracy"] <= 1.0 and meta["episodes"] in (2, 4)
    assert len(meta["val_classes"]) == 2 and len(meta["train_classes"]) == 6
    assert not set(meta["val_classes"]) & set(meta["train_classes"])
    assert "meta-train" in meta["command"] and f"--method {method}" in meta["command"]
    assert Path(f"{out}.state").is_file()
    capsys.readouterr()
    options = "--way 2 --shot 1 --query 2 --episodes 3 --json --threads 1"
    code = main(
        ["evaluate", str(patterns), "--encoder", str(out), "--method", method, *options.split()]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["accuracy"] <= 1.0 and result["ci95"] >= 0.0
    assert 0.0 <= result["ece"] <= 1.0
    assert result["episodes"] == 3 and result["way"] == 2 and result["method"] == method
    assert "2 validation classes" in result["classes"]  # held-out classes by default


def _config(data: Path, out: Path, episodes: int) -> MetaTrainConfig:
    return MetaTrainConfig(
        data_dir=str(data),
        out=str(out),
        method="metric",
        way=3,
        shot=1,
        query=2,
        episodes=episodes,
        image_size=16,
        val_every=3,
        val_episodes=2,
        threads=1,
        seed=5,
        state_every=100,
    )


def test_interrupted_run_resumes_to_the_same_result(patterns: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.pt"
    run_meta_training(_config(patterns, whole, 6))
    parts = tmp_path / "parts.pt"
    generator = meta_train(_config(patterns, parts, 6))
    steps = 0
    for item in generator:
        steps += not isinstance(item, dict)
        if steps == 4:
            break
    generator.close()  # as an interruption: the state is saved on the way out
    assert torch.load(f"{parts}.state", weights_only=False)["step"] == 4
    config = _config(patterns, parts, 6)
    config.resume = True
    items = list(meta_train(config))
    assert items[0] == {"resumed_at": 4} and items[-1]["episodes"] == 6
    a = torch.load(f"{whole}.state", weights_only=False)
    b = torch.load(f"{parts}.state", weights_only=False)
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.allclose(value, b["model"][key], atol=1e-6), key
    assert a["best"] == b["best"]


def test_resume_refuses_other_settings(patterns: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    assert main(train_args(patterns, out, "metric")) == 0
    assert main(train_args(patterns, out, "metric", "--resume")) == 0  # already done: same count
    assert torch.load(f"{out}.state", weights_only=False)["step"] == 4
    assert main(train_args(patterns, out, "anil", "--resume")) == 2


def test_metric_learns_the_easy_task(
    patterns: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "metric.pt"
    args = train_args(patterns, out, "metric")
    args[args.index("--episodes") + 1] = "30"
    args[args.index("--val-fraction") + 1] = "0"
    assert main(args) == 0
    capsys.readouterr()
    options = "--method metric --way 4 --shot 1 --query 4 --episodes 20 --json --threads 1"
    assert main(["evaluate", str(patterns), "--encoder", str(out), *options.split()]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == "all 8 classes (8 of them trained the checkpoint)"
    assert result["accuracy"] > 0.7  # chance: 0.25
