"""The app's encoder chooser lists an encoder that cannot be used now disabled, with its reason as
the tooltip; the worker finds the reasons in the registry (ResNets without a weights file)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

from fewshot_gui.ui.controls import DEFAULT_ENCODER, ControlPanel

ENCODERS = ["efficientnet-lite0", "resnet18", "resnet50", "conv4"]
UNUSABLE = {"resnet18": "weights file resnet18.pth not on this machine", "resnet50": "no file"}


def _item(panel: ControlPanel, name: str):
    return panel.encoder.model().item(panel.encoder.findData(name))


@pytest.fixture
def panel(qtbot) -> ControlPanel:
    panel = ControlPanel()
    qtbot.addWidget(panel)
    panel.set_choices(["auto", "metric"], ENCODERS, {}, UNUSABLE)
    return panel


def test_unusable_encoders_are_disabled_with_their_reason(panel: ControlPanel) -> None:
    assert [panel.encoder.itemText(i) for i in range(panel.encoder.count())] == [
        DEFAULT_ENCODER,
        *ENCODERS,
    ]
    for name in ("resnet18", "resnet50"):
        assert not _item(panel, name).isEnabled()
        tooltip = panel.encoder.itemData(panel.encoder.findData(name), Qt.ItemDataRole.ToolTipRole)
        assert UNUSABLE[name] in tooltip
    for name in ("efficientnet-lite0", "conv4"):
        assert _item(panel, name).isEnabled() and not _item(panel, name).toolTip()


def test_the_keyboard_skips_an_unusable_encoder(panel: ControlPanel, qtbot) -> None:
    panel.encoder.setCurrentIndex(panel.encoder.findData("efficientnet-lite0"))
    qtbot.keyClick(panel.encoder, Qt.Key.Key_Down)
    assert panel.encoder.currentData() == "conv4"  # past both ResNets
    assert panel.settings()["encoder"] == "conv4"


def test_a_chosen_encoder_that_became_unusable_stays_chosen_and_says_why(
    qtbot,
) -> None:
    panel = ControlPanel()
    qtbot.addWidget(panel)
    panel.apply_settings({"encoder": "resnet50"})  # a saved project, before the names arrive
    panel.set_choices(["auto"], ENCODERS, {}, UNUSABLE)
    assert panel.settings()["encoder"] == "resnet50"  # the project's choice is not replaced
    assert "no file" in panel.encoder.toolTip()
    panel.encoder.setCurrentIndex(panel.encoder.findData("conv4"))
    assert panel.encoder.toolTip() == ""


def test_the_worker_reports_why_an_encoder_is_unusable(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real registry, an empty torch hub cache: the ResNets arrive disabled in the panel, the
    offline encoders enabled; no model is loaded to find out."""
    from fewshot_gui.encoders.pretrained import WEIGHTS_ENV
    from fewshot_gui.workers.labeling import LabelingWorker

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    panel = ControlPanel()
    qtbot.addWidget(panel)
    worker = LabelingWorker(factory=lambda settings: pytest.fail("no session is made"))
    worker._prepared = True  # the test thread keeps its priority
    worker.choicesReady.connect(panel.set_choices)
    with qtbot.waitSignal(worker.choicesReady, timeout=20000):
        worker.reportChoices()
    for name in ("resnet18", "resnet50"):
        assert not _item(panel, name).isEnabled()
        assert "never downloaded" in _item(panel, name).toolTip()
    assert _item(panel, "conv4").isEnabled() and _item(panel, "resnet12").isEnabled()


def test_unusable_encoders_names_each_reason_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from fewshot_gui.encoders import catalog
    from fewshot_gui.workers.labeling import unusable_encoders

    def broken() -> str:
        raise RuntimeError("plug-in bug")

    specs = {
        "fine": SimpleNamespace(check_available=lambda: None),
        "missing": SimpleNamespace(check_available=lambda: "weights\nnot installed"),
        "broken": SimpleNamespace(check_available=broken),
    }
    monkeypatch.setattr(catalog, "find_encoder", specs.get)
    assert unusable_encoders(["fine", "missing", "broken", "gone"]) == {
        "missing": "weights not installed",
        "broken": "its availability check failed (RuntimeError: plug-in bug)",
        "gone": "not registered",
    }
