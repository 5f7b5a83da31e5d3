"""Meta-training drives the adapters' own learners: the metric distance and temperature travel in
the checkpoint, labeling follows them, and old checkpoints keep labeling as before."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot_gui.adapters import create_adapter
from fewshot_gui.adapters.maml import FullNetworkLearner, HeadLearner
from fewshot_gui.adapters.metric import PrototypeLearner
from fewshot_gui.cli import main
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.paths import resources_dir
from fewshot_gui.encoders.checkpoint import load_checkpoint
from fewshot_gui.training.episode_model import build_learner

OPTIONS = (
    "--backbone conv4 --way 3 --shot 1 --query 2 --episodes 2 --image-size 16 --val-every 2 "
    "--val-episodes 2 --val-fraction 0.25 --threads 1 --seed 3"
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 classes of 5 tiny images, a colour per class (shape, not accuracy, matters here)."""
    from imagefactory import make_image

    root = tmp_path_factory.mktemp("classes")
    for c in range(8):
        for i in range(5):
            color = (30 * c, 200 - 20 * c, (70 * c + 40 * i) % 256)
            make_image(root / f"class{c}" / f"{i}.png", size=(16 + i, 16), color=color)
    return root


def train(folders: Path, out: Path, *extra: str) -> dict:
    args = ["meta-train", str(folders), "--method", "metric", "--out", str(out), *extra]
    assert main([*args, *OPTIONS.split()]) == 0
    return load_checkpoint(out)


@pytest.mark.parametrize(
    ("options", "trained", "labeling"),
    [
        ([], "euclidean", "cosine"),  # the default: ProtoNet, labeled with the cosine
        (["--option", "distance=cosine"], "cosine", "cosine"),
        (["--option", "label_distance=euclidean"], "euclidean", "euclidean"),
    ],
)
def test_metric_checkpoint_records_the_labeling_distance_and_its_temperature(
    folders: Path, tmp_path: Path, options: list[str], trained: str, labeling: str
) -> None:
    ckpt = train(folders, tmp_path / "m.pt", *options)
    state, meta = ckpt["adapter"]["state"], ckpt["metadata"]
    assert meta["learner"] == {"distance": trained, "label_distance": labeling}
    assert state["distance"] == labeling
    calibration = meta["calibration"]
    assert calibration["distance"] == labeling and calibration["trained_distance"] == trained
    assert calibration["queries"] == 2 * 2 * 2  # episodes × the 2 validation classes × queries
    assert calibration["fitted_on"] == "2 validation episodes, 2-way 1-shot"
    assert math.isclose(float(state["log_scale"].exp()), calibration["scale"], rel_tol=1e-3)
    adapter = create_adapter("metric", state=state)  # labeling follows the checkpoint
    assert adapter.distance == labeling
    x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    assert math.isclose(adapter.fit(x, ["a", "b", "c"]).scale, calibration["scale"], rel_tol=1e-3)


def test_old_checkpoints_label_with_the_cosine_and_their_fitted_scale() -> None:
    path = resources_dir() / "checkpoints" / "omniglot-metric.pt"
    if not path.is_file():
        pytest.skip("no shipped omniglot checkpoint")
    state = load_checkpoint(path)["adapter"]["state"]
    assert "distance" not in state  # made before the distance was recorded
    x = np.random.default_rng(1).normal(size=(4, 64)).astype(np.float32)
    labels = ["a", "b", "c", "d"]
    adapter = create_adapter("metric", state=state).fit(x, labels)
    assert adapter.distance == "cosine"
    assert math.isclose(adapter.scale, float(state["log_scale"].exp()), rel_tol=1e-6)
    euclidean = create_adapter("metric", state=state, distance="euclidean").fit(x, labels)
    assert not math.isclose(euclidean.scale, adapter.scale)  # a cosine scale is not reused


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_labeling_gives_the_learner_s_probabilities(distance: str) -> None:
    torch.manual_seed(0)
    learner = PrototypeLearner(distance, scale=2.5)
    support, query = torch.randn(5, 16), torch.randn(20, 16)
    y = torch.arange(5)
    expected = torch.softmax(learner(support, y, query, 5), 1).detach().numpy()
    adapter = create_adapter("metric", state=learner.adapter_state())
    adapter.fit(support.numpy(), [str(c) for c in range(5)])
    np.testing.assert_allclose(adapter.predict_proba(query.numpy()), expected, atol=1e-5)


def test_calibration_recovers_the_temperature_of_the_data() -> None:
    """Queries drawn with cosine logits ``7 · cos`` to five fixed prototypes: the fitted cosine
    scale is about 7, whatever the learner was trained with."""
    gen = torch.Generator().manual_seed(0)
    episodes = []
    for _ in range(40):
        support = torch.randn(5, 16, generator=gen)
        query = torch.randn(100, 16, generator=gen)
        sims = (
            torch.nn.functional.normalize(query, dim=1)
            @ torch.nn.functional.normalize(support, dim=1).T
        )
        labels = torch.multinomial(torch.softmax(7.0 * sims, 1), 1, generator=gen)[:, 0]
        episodes.append((support, torch.arange(5), query, labels))
    learner = PrototypeLearner("euclidean", "cosine")
    result = learner.calibrate(episodes)
    assert result["distance"] == "cosine" and 6.0 < result["scale"] < 8.2
    state = learner.adapter_state()
    assert state["distance"] == "cosine"
    assert math.isclose(float(state["log_scale"].exp()), result["scale"], rel_tol=1e-6)


def test_learners_come_from_the_adapter_classes_with_their_defaults() -> None:
    metric = build_learner("metric", 8, {"steps": 5, "adapt": None})
    assert isinstance(metric, PrototypeLearner)
    assert (metric.distance, metric.label_distance) == ("euclidean", "cosine")
    head = build_learner("anil", 8, {"steps": 3, "lr": None, "adapt": None})
    assert isinstance(head, HeadLearner) and int(head.inner_steps) == 3 and head.lr == 0.1
    full = build_learner("maml", 8, {"steps": 5, "adapt": None, "pretrained": False})
    assert isinstance(full, FullNetworkLearner) and full.lr == 0.4 and not full.first_order
    assert isinstance(build_learner("fomaml", 8, {"pretrained": True}), HeadLearner)
    with pytest.raises(UsageError, match="maml"):
        build_learner("metric", 8, {"adapt": "full"})
    with pytest.raises(UsageError, match="maml"):
        build_learner("anil", 8, {"adapt": "full"})
    with pytest.raises(UsageError, match="bogus"):
        build_learner("metric", 8, {}, {"bogus": 1})
    with pytest.raises(UsageError, match="meta-trained"):
        build_learner("auto", 8, {})
