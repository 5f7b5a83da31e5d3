"""A third-party method: one module and one entry point, and every front end offers it.

The test writes a tiny plug-in "distribution" to ``tmp_path`` (a module and a ``.dist-info`` with
``entry_points.txt``, found through ``sys.path`` as an installed package would be; no pip).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from imagefactory import make_image
from plugindist import write_distribution

from fewshot_gui.adapters import registry
from fewshot_gui.adapters.registry import adapter_names, create_adapter, reload_adapters
from fewshot_gui.cli import main
from fewshot_gui.core.plugins import PluginWarning
from fewshot_gui.encoders.checkpoint import load_checkpoint

PLUGIN = '''
"""A plug-in method: each class scores its nearest example (cosine), times a learned scale."""
import torch
import torch.nn.functional as F
from torch import nn

from fewshot_gui.adapters.base import Adapter, l2_normalize


def nearest_logits(scale, support, support_y, query, n_way):
    """(Q, n_way): the best cosine of each query to each class's examples, scaled."""
    sims = l2_normalize(query) @ l2_normalize(support).T
    outside = (F.one_hot(support_y, n_way).to(sims.dtype) - 1) * 4  # -4 for other classes
    return scale * (sims[:, :, None] + outside[None]).amax(1)


class NearestLearner(nn.Module):
    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(2.3))

    def forward(self, support, support_y, query, n_way):
        return nearest_logits(self.log_scale.exp(), support, support_y, query, n_way)


class NearestAdapter(Adapter):
    name = "nearest"
    family = "metric"
    help = "nearest single example (a plug-in)"
    auto = "default"

    @classmethod
    def learner(cls, dim, **settings):
        return NearestLearner()

    def _refit(self):
        self.scale = float(self._state["log_scale"].exp()) if self._state else 10.0

    def _logits(self, queries, features):
        n_way = len(self._classes)
        return nearest_logits(self.scale, self._x, self.targets, queries, n_way)
'''


@pytest.fixture
def plugin_path(tmp_path: Path):
    """``sys.path`` holds a plug-in package ``fewshot_nearest`` adding the method ``nearest``."""
    root = tmp_path / "site"
    write_distribution(
        root,
        "fewshot_nearest",
        "[fewshot_gui.adapters]\nnearest = fewshot_nearest:NearestAdapter\n",
        PLUGIN,
    )
    sys.path.insert(0, str(root))
    reload_adapters()
    yield root
    sys.path.remove(str(root))
    sys.modules.pop("fewshot_nearest", None)
    reload_adapters()


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    """6 classes of 4 small images each (a colour per class)."""
    root = tmp_path / "classes"
    for c in range(6):
        color = (40 * c, 255 - 40 * c, (97 * c) % 256)
        for i in range(4):
            make_image(root / f"class{c}" / f"{i}.png", size=(20 + i, 20), color=color)
    return root


def test_the_plugin_is_registered_and_labels(plugin_path: Path) -> None:
    assert "nearest" in adapter_names() and "metric" in adapter_names()
    assert registry.method_help()["nearest"] == "nearest single example (a plug-in)"
    assert "nearest" in registry.trainable_names()
    x = np.eye(4, dtype=np.float32)
    adapter = create_adapter("nearest").fit(x[:3], ["a", "b", "c"])
    assert adapter.classes == ["a", "b", "c"]
    assert (adapter.predict_proba(x[:3]).argmax(1) == [0, 1, 2]).all()


def test_auto_and_the_app_chooser_offer_it(plugin_path: Path, qtbot) -> None:
    assert "nearest" in create_adapter("auto").candidates  # the class says auto = "default"
    from fewshot_gui.ui.controls import ControlPanel
    from fewshot_gui.workers.labeling import available_choices, method_help

    methods, _ = available_choices()
    assert "nearest" in methods and methods[0] == "auto"
    panel = ControlPanel()
    qtbot.addWidget(panel)
    panel.set_choices(methods, [], method_help())
    row = panel.method.findData("nearest")
    assert row > 0
    assert panel.method.itemData(row, role=3) == "nearest single example (a plug-in)"  # tooltip


def test_label_evaluate_and_meta_train_offer_it(
    plugin_path: Path, class_folders: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    support, images = tmp_path / "support", tmp_path / "images"
    for c in (0, 1):
        for i in range(4):
            source = class_folders / f"class{c}" / f"{i}.png"
            target = (support / f"class{c}" if i < 2 else images) / f"{c}-{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    out = tmp_path / "labels.csv"
    common = ["--encoder", "conv4", "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    label = ["label", str(support), str(images), "--out", str(out), "--method", "nearest"]
    assert main([*label, *common, "--quiet"]) == 0
    assert len(out.read_text().splitlines()) == 1 + 4

    ckpt = tmp_path / "nearest.pt"
    train = (
        "--way 3 --shot 1 --query 2 --episodes 2 --image-size 16 --val-every 2 --val-episodes 1 "
        "--val-fraction 0.34 --threads 1"
    )
    args = ["meta-train", str(class_folders), "--method", "nearest", "--out", str(ckpt)]
    assert main([*args, *train.split()]) == 0
    saved = load_checkpoint(ckpt)
    assert saved["adapter"]["method"] == "nearest"
    assert set(saved["adapter"]["state"]) == {"log_scale"}
    capsys.readouterr()

    options = "--method nearest --way 2 --shot 1 --query 2 --episodes 2 --json --threads 1"
    assert main(["evaluate", str(class_folders), "--encoder", str(ckpt), *options.split()]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "nearest" and 0 <= result["accuracy"] <= 1


def test_without_package_metadata_the_builtins_are_scanned(
    plugin_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = registry.entry_points
    monkeypatch.setattr(
        registry,
        "entry_points",
        lambda group: [p for p in everything(group) if not p.module.startswith("fewshot_gui")],
    )
    reload_adapters()
    names = adapter_names()
    builtins = ["metric", "memory", "maml", "fomaml", "anil", "metasgd", "metalstm"]
    assert names == [*builtins, "nearest", "auto"]  # by each class's order: plug-ins at 50


def test_a_broken_plugin_gives_one_warning_each_and_no_crash(
    plugin_path: Path, tmp_path: Path
) -> None:
    write_distribution(
        tmp_path / "broken",
        "fewshot_broken",
        """
        [fewshot_gui.adapters]
        missing = no_such_module_anywhere:Thing
        metric = fewshot_broken:Impostor
        """,
        "from fewshot_gui.adapters.metric import MetricAdapter\n\n"
        "class Impostor(MetricAdapter):\n    pass\n",
    )
    sys.path.insert(0, str(tmp_path / "broken"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reload_adapters()
    finally:
        sys.path.remove(str(tmp_path / "broken"))
        sys.modules.pop("fewshot_broken", None)
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert len(messages) == 2, messages
    assert any("'missing'" in m and "ModuleNotFoundError" in m for m in messages)
    assert any("'metric'" in m and "already registered" in m for m in messages)
    assert registry.adapter_class("metric").__module__ == "fewshot_gui.adapters.metric"
    assert "nearest" in adapter_names()


def test_threads_asking_while_the_methods_load_all_see_every_method(plugin_path: Path) -> None:
    import threading

    registry.reload_adapters()
    expected = adapter_names()
    registry._ADAPTERS.clear()
    registry._loaded = False  # as at start-up: the first callers load the methods
    seen: list[list[str]] = []
    threads = [threading.Thread(target=lambda: seen.append(adapter_names())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [expected] * 4
