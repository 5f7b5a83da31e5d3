"""The checkpoint format: round trip, half precision, atomic writes, plain errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot_gui.core.errors import CheckpointError
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.backbones import Conv4
from fewshot_gui.encoders.checkpoint import (
    FORMAT,
    build_from_checkpoint,
    load_checkpoint,
    preprocessing_of,
    save_checkpoint,
)

GREY = Preprocessing(resize=28, crop=28, mean=(0.5,), std=(0.5,), channels=1)


def _save(path: Path, model: torch.nn.Module, **extra) -> Path:
    return save_checkpoint(
        path,
        arch_name="conv4",
        arch_kwargs={"in_channels": 1, "image_size": 28, "hidden": 16},
        preprocessing=GREY,
        embed_dim=model.embed_dim,
        encoder_state=model.state_dict(),
        **extra,
    )


@pytest.fixture
def model() -> Conv4:
    torch.manual_seed(1)
    return Conv4(in_channels=1, image_size=28, hidden=16).eval()


def test_round_trip_gives_same_outputs(tmp_path: Path, model: Conv4) -> None:
    path = _save(
        tmp_path / "sub" / "enc.pt",
        model,
        adapter_method="memory",
        adapter_state={"temperature": torch.tensor(3.0), "keys": np.ones((2, 4), np.float32)},
        metadata={
            "command": "fewshot-gui meta-train x",
            "val_accuracy": np.float64(0.9),
            "data": Path("/data"),
        },
    )
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == FORMAT and ckpt["version"] == 1
    assert ckpt["adapter"]["method"] == "memory"
    assert torch.equal(ckpt["adapter"]["state"]["keys"], torch.ones(2, 4))
    assert ckpt["metadata"] == {
        "command": "fewshot-gui meta-train x",
        "val_accuracy": 0.9,
        "data": "/data",
    }
    assert preprocessing_of(ckpt) == GREY
    rebuilt = build_from_checkpoint(ckpt)
    assert not rebuilt.training and rebuilt.embed_dim == 16
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), atol=0, rtol=0)
    # the file stays loadable with the safe loader alone
    assert isinstance(torch.load(path, weights_only=True), dict)
    assert [p.name for p in path.parent.iterdir()] == ["enc.pt"]  # no temporary file left


def test_half_precision_is_smaller_and_close(tmp_path: Path, model: Conv4) -> None:
    full = _save(tmp_path / "full.pt", model)
    half = _save(
        tmp_path / "half.pt",
        model,
        half=True,
        adapter_method="anil",
        adapter_state={"w": torch.randn(3, 16)},
    )
    assert half.stat().st_size < 0.7 * full.stat().st_size
    ckpt = load_checkpoint(half)
    assert all(t.dtype != torch.float16 for t in ckpt["encoder_state"].values())
    assert ckpt["adapter"]["state"]["w"].dtype == torch.float32
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(build_from_checkpoint(ckpt)(x), model(x), atol=2e-2, rtol=2e-2)


def test_no_adapter_is_an_empty_adapter(tmp_path: Path, model: Conv4) -> None:
    ckpt = load_checkpoint(_save(tmp_path / "a.pt", model))
    assert ckpt["adapter"] == {"method": None, "state": {}}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"PK\x03\x04broken zip"])
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_truncated_checkpoint(tmp_path: Path, model: Conv4) -> None:
    path = _save(tmp_path / "t.pt", model)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_other_torch_file_is_not_a_checkpoint(tmp_path: Path, model: Conv4) -> None:
    path = tmp_path / "state.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a fewshot-gui checkpoint"):
        load_checkpoint(path)


def test_newer_version_asks_for_update(tmp_path: Path, model: Conv4) -> None:
    path = _save(tmp_path / "c.pt", model)
    data = torch.load(path, weights_only=True)
    data["version"] = 2
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="newer fewshot-gui"):
        load_checkpoint(path)


def test_weights_that_do_not_fit(tmp_path: Path, model: Conv4) -> None:
    path = _save(tmp_path / "c.pt", model)
    data = torch.load(path, weights_only=True)
    data["arch"]["kwargs"]["hidden"] = 32
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        build_from_checkpoint(load_checkpoint(path))


def test_failed_save_keeps_previous_file(tmp_path: Path, model: Conv4, monkeypatch) -> None:
    path = _save(tmp_path / "c.pt", model)
    before = path.read_bytes()

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _save(path, model)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_unsaveable_metadata_is_refused(tmp_path: Path, model: Conv4) -> None:
    with pytest.raises(TypeError, match="metadata"):
        _save(tmp_path / "c.pt", model, metadata={"when": object()})
    assert not (tmp_path / "c.pt").exists()
