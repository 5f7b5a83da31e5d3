"""``fewshot-gui encoders``: the table and the JSON list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fewshot_gui.cli import main


@pytest.fixture(autouse=True)
def _empty_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWSHOT_GUI_RESOURCES", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_table_lists_every_encoder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["name", "embedding", "input"]
    for name in (
        "efficientnet-lite0",
        "resnet18",
        "resnet50",
        "conv4",
        "resnet12",
        "omniglot",
        "photos",
    ):
        row = next(line for line in lines if line.startswith(name + " "))
        assert ("not usable:" in row) == (name in ("resnet18", "resnet50", "omniglot", "photos"))
    assert "efficientnet-lite0 (default)" in out
    assert "not meta-trained yet" in out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoders", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["conv4"]["embed_dim"] == 1600 and rows["conv4"]["usable"] is True
    assert rows["efficientnet-lite0"]["input_size"] == "224×224 RGB"
    assert rows["omniglot"]["usable"] is False and rows["omniglot"]["methods"] == []
    assert rows["resnet18"]["reason"]
