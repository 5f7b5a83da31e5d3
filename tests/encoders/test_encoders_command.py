"""``fewshot-gui encoders``: the table and the JSON list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fewshot_gui.cli import main
from fewshot_gui.encoders import pretrained
from fewshot_gui.encoders.builtin import BUILTINS


@pytest.fixture(autouse=True)
def _empty_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWSHOT_GUI_RESOURCES", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_table_lists_every_encoder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["name", "embedding", "input"]
    unusable = {"resnet18", "resnet50", "omniglot", "photos"} | {
        f"efficientnet-lite{v}"
        for v in (1, 2)
        if pretrained.efficientnet_lite_weights_path(v) is None
    }  # lite1/2 need packages that are not dependencies
    for name in BUILTINS:
        row = next(line for line in lines if line.startswith(name + " "))
        assert ("not usable:" in row) == (name in unusable)
    assert "efficientnet-lite0 (default)" in out
    assert "not meta-trained yet" in out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["conv4"]["embed_dim"] == 1600 and rows["conv4"]["usable"] is True
    assert rows["efficientnet-lite0"]["input_size"] == "224×224 RGB"
    assert rows["omniglot"]["usable"] is False and rows["omniglot"]["methods"] == []
    assert rows["resnet18"]["reason"]


def test_shipped_checkpoints_list_the_methods_they_carry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """photos is one merged file: its methods are read from it, and no per-method file that does
    not exist is named; omniglot has one file per method. No folder is shown."""
    from fewshot_gui.core.paths import packaged_resources

    shipped = packaged_resources() or Path(__file__).resolve().parents[2] / "resources"
    if not (shipped / "checkpoints" / "photos.pt").is_file():
        pytest.skip("no shipped checkpoints here")
    monkeypatch.setenv("FEWSHOT_GUI_RESOURCES", str(shipped))
    assert main(["encoders", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    photos, omniglot = rows["photos"], rows["omniglot"]
    assert photos["usable"] and photos["default"]
    assert [c["file"] for c in photos["checkpoints"]] == ["photos.pt"]
    assert {"metric", "memory", "maml", "anil"} <= set(photos["methods"])
    assert photos["weights_source"] == "meta-trained, shipped: photos.pt"
    assert omniglot["methods"] == [
        "metric", "memory", "maml", "fomaml", "anil", "metasgd", "metalstm"
    ]  # fmt: skip
    assert all(c["methods"] == [c["file"][9:-3]] for c in omniglot["checkpoints"])
    assert main(["encoders"]) == 0
    table = capsys.readouterr().out
    assert "photos-<method>" not in table and str(shipped) not in table
    photos_line = next(line for line in table.splitlines() if line.startswith("photos"))
    assert "meta-learned: metric, memory" in photos_line
