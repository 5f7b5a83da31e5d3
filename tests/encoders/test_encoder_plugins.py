"""A third-party encoder: one module and one entry point, and every front end offers it.

The test writes a tiny plug-in "distribution" to ``tmp_path`` (a module and a ``.dist-info`` with
``entry_points.txt``, found through ``sys.path`` as an installed package would be; no pip).
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
from imagefactory import make_image
from plugindist import write_distribution

from fewshot_gui.cli import main
from fewshot_gui.core.device import plan_device
from fewshot_gui.core.plugins import PluginWarning
from fewshot_gui.encoders import catalog
from fewshot_gui.encoders.builtin import BUILTINS
from fewshot_gui.encoders.catalog import encoder_names, list_encoders, reload_encoders
from fewshot_gui.encoders.checkpoint import save_checkpoint
from fewshot_gui.encoders.registry import load_encoder

PLUGIN = '''
"""A plug-in encoder: the mean colour of each quarter of the image (12-d, nothing to learn)."""
from torch import nn

from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders import EncoderSpec


class Quarters(nn.Module):
    embed_dim = 12

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.mix = nn.Identity()

    def forward(self, x):
        return self.mix(self.pool(x).flatten(1))


def quarters():
    return EncoderSpec(
        name="quarters",
        description="mean colour of each image quarter (a plug-in)",
        preprocessing=Preprocessing(
            resize=8, crop=8, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="bilinear"
        ),
        embed_dim=12,
        weights_source="nothing to learn",
        build=lambda: Quarters().eval(),
        arch_name="quarters",
        architecture=Quarters,
    )


def fails():
    raise RuntimeError("no licence key")


def not_a_spec():
    return "quarters"


def wrong_name():
    return quarters()
'''


@pytest.fixture
def on_path():
    """Put folders on ``sys.path`` (and find the encoders again); undone afterwards."""
    added: list[Path] = []

    def add(root: Path) -> None:
        sys.path.insert(0, str(root))
        added.append(root)
        reload_encoders()

    yield add
    for root in added:
        sys.path.remove(str(root))
    for module in ("fewshot_quarters", "fewshot_broken"):
        sys.modules.pop(module, None)
    reload_encoders()


@pytest.fixture
def plugin(tmp_path: Path, on_path) -> Path:
    """``sys.path`` holds a plug-in package ``fewshot_quarters`` adding the encoder ``quarters``."""
    entry = "[fewshot_gui.encoders]\nquarters = fewshot_quarters:quarters\n"
    root = write_distribution(tmp_path / "site", "fewshot_quarters", entry, PLUGIN)
    on_path(root)
    return root


@pytest.fixture
def colours(tmp_path: Path) -> Path:
    """4 classes of 4 small images, one colour per class."""
    root = tmp_path / "colours"
    for c, colour in enumerate(((220, 30, 30), (30, 200, 40), (40, 40, 230), (230, 220, 40))):
        for i in range(4):
            make_image(root / f"class{c}" / f"{i}.png", size=(20 + i, 18), color=colour)
    return root


def test_the_plugin_is_registered_after_the_builtins(plugin: Path) -> None:
    assert encoder_names() == [*BUILTINS, "quarters"]
    spec = list_encoders()[-1]
    assert spec.name == "quarters" and spec.embed_dim == 12 and spec.check_available() is None


def test_label_and_evaluate_offer_it(
    plugin: Path, colours: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    support, images = tmp_path / "support", tmp_path / "images"
    for c in range(4):
        for i, source in enumerate(sorted((colours / f"class{c}").iterdir())):
            target = (support / f"class{c}" if i < 1 else images) / f"{c}-{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    out = tmp_path / "labels.csv"
    common = ["--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    label = ["label", str(support), str(images), "--out", str(out), "--encoder", "Quarters"]
    assert main([*label, "--method", "metric", *common]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    assert all(row["label"] == f"class{Path(row['path']).name[0]}" for row in rows), rows

    options = "--method metric --way 3 --shot 1 --query 2 --episodes 3 --json --threads 1"
    args = ["evaluate", str(colours), "--encoder", "quarters", *options.split(), "--no-cache"]
    capsys.readouterr()
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["encoder"] == "quarters" and result["accuracy"] == 1.0


def test_the_app_chooser_and_the_encoders_command_offer_it(
    plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fewshot_gui.workers.labeling import available_choices

    _, encoders = available_choices()
    assert encoders[-1] == "quarters"
    assert main(["encoders", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[-1]
    assert row["name"] == "quarters" and row["usable"] and row["input_size"] == "8×8 RGB"


def test_a_checkpoint_may_name_the_plugins_architecture(plugin: Path, tmp_path: Path) -> None:
    model = load_encoder("quarters", plan_device("cpu")).model
    path = save_checkpoint(
        tmp_path / "q.pt",
        arch_name="quarters",
        arch_kwargs={},
        preprocessing=list_encoders()[-1].preprocessing,
        embed_dim=12,
        encoder_state=model.state_dict(),
    )
    loaded = load_encoder(path, plan_device("cpu"))
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))


def test_a_broken_plugin_gives_one_warning_each_and_no_crash(tmp_path: Path, on_path) -> None:
    root = write_distribution(
        tmp_path / "broken",
        "fewshot_broken",
        """
        [fewshot_gui.encoders]
        missing = no_such_module_anywhere:thing
        fails = fewshot_broken:fails
        not-a-spec = fewshot_broken:not_a_spec
        wrong-name = fewshot_broken:wrong_name
        conv4 = fewshot_broken:quarters
        Bad/Name = fewshot_broken:quarters
        """,
        PLUGIN,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        on_path(root)
        names = [spec.name for spec in list_encoders()]
    plugin_warnings = [w for w in caught if issubclass(w.category, PluginWarning)]
    messages = [str(w.message) for w in plugin_warnings]
    assert {(w.filename, w.lineno) for w in plugin_warnings} == {("fewshot-gui", 0)}  # no path
    assert names == list(BUILTINS)
    assert len(messages) == 6, messages
    for name, why in [
        ("missing", "ModuleNotFoundError"),
        ("fails", "RuntimeError: no licence key"),
        ("not-a-spec", "not an EncoderSpec"),
        ("wrong-name", "named 'quarters'"),
        ("conv4", "another encoder has that name"),
        ("Bad/Name", "not an encoder name"),
    ]:
        assert sum(f"{name!r}" in m and why in m for m in messages) == 1, (name, messages)


def test_without_package_metadata_the_builtins_come_from_their_table(
    plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = catalog.load_entry_points

    def no_own_metadata(group, check=None):
        return [(n, obj) for n, obj in everything(group, check) if n not in BUILTINS]

    monkeypatch.setattr(catalog, "load_entry_points", no_own_metadata)
    reload_encoders()
    assert encoder_names() == [*BUILTINS, "quarters"]
    assert load_encoder("conv4", plan_device("cpu")).model.embed_dim == 1600


def test_pyproject_registers_the_builtins_as_entry_points() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"][catalog.GROUP]
    assert declared == {
        name: f"{catalog.BUILTIN_MODULE}:{factory.__name__}" for name, factory in BUILTINS.items()
    }
