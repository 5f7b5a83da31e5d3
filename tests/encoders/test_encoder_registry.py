"""Encoder registry: duplicates, spec consistency, families of checkpoints, resolving, loading."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fewshot_gui.core.device import plan_device
from fewshot_gui.core.errors import CheckpointError, UsageError, WeightsUnavailableError
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders import registry
from fewshot_gui.encoders.backbones import Conv4
from fewshot_gui.encoders.builtin import BUILTINS
from fewshot_gui.encoders.catalog import find_encoder
from fewshot_gui.encoders.checkpoint import save_checkpoint
from fewshot_gui.encoders.registry import (
    EncoderSpec,
    default_encoder_name,
    embedding_cache_id,
    family_checkpoints,
    find_family_checkpoint,
    list_encoders,
    load_encoder,
    register_encoder,
    resolve_encoder,
)

GREY = Preprocessing(resize=28, crop=28, mean=(0.5,), std=(0.5,), channels=1)
EXPECTED = list(BUILTINS)


@pytest.fixture
def resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty resources folder (the repository's own checkpoints are ignored)."""
    monkeypatch.setenv("FEWSHOT_GUI_RESOURCES", str(tmp_path / "resources"))
    (tmp_path / "resources" / "checkpoints").mkdir(parents=True)
    return tmp_path / "resources"


def _write(
    path: Path, method: str | None = "metric", seed: int = 0, state: dict | None = None
) -> Conv4:
    """A tiny Conv-4 checkpoint; its adapter state is ``state`` (default: a scale if ``method``)."""
    torch.manual_seed(seed)
    model = Conv4(in_channels=1, image_size=28, hidden=8).eval()
    save_checkpoint(
        path,
        arch_name="conv4",
        arch_kwargs={"in_channels": 1, "image_size": 28, "hidden": 8},
        preprocessing=GREY,
        embed_dim=model.embed_dim,
        encoder_state=model.state_dict(),
        adapter_method=method,
        adapter_state=state or ({"scale": torch.tensor([2.0])} if method else None),
        metadata={"command": "test"},
    )
    return model


def test_builtin_names_registered_in_order() -> None:
    assert [spec.name for spec in list_encoders()][: len(EXPECTED)] == EXPECTED


def test_duplicate_name_refused() -> None:
    spec = list_encoders()[0]
    with pytest.raises(ValueError, match="already registered"):
        register_encoder(spec)


@pytest.mark.parametrize("spec", list_encoders(), ids=lambda s: s.name)
def test_spec_is_consistent(spec: EncoderSpec, resources: Path) -> None:
    assert isinstance(spec.preprocessing, Preprocessing)
    assert spec.preprocessing.channels in (1, 3)
    assert (
        len(spec.preprocessing.mean) == len(spec.preprocessing.std) == spec.preprocessing.channels
    )
    assert spec.preprocessing.crop <= spec.preprocessing.resize
    assert spec.embed_dim > 0 and spec.description and spec.weights_source
    reason = spec.check_available()
    assert reason is None or (isinstance(reason, str) and reason and "\n" not in reason)
    if spec.name in ("conv4", "resnet12"):
        assert reason is None and "meta-train" in spec.description
        model = spec.build()
        assert not model.training
        p = spec.preprocessing
        with torch.no_grad():
            out = model(torch.zeros(2, p.channels, p.crop, p.crop))
        assert out.shape == (2, spec.embed_dim)


@pytest.mark.parametrize("family", ["omniglot", "photos"])
def test_family_without_checkpoint_explains_and_refuses(family: str, resources: Path) -> None:
    spec = resolve_encoder(family, method="maml")
    reason = spec.check_available()
    assert reason is not None and reason.startswith(
        "not meta-trained yet: run fewshot-gui meta-train"
    )
    with pytest.raises(WeightsUnavailableError, match="not meta-trained yet") as info:
        load_encoder(family, plan_device("cpu"))
    assert "\n" not in str(info.value)


def test_family_method_picks_and_falls_back(resources: Path) -> None:
    ckpts = resources / "checkpoints"
    _write(ckpts / "omniglot-fomaml.pt", "fomaml", seed=1)
    _write(ckpts / "omniglot-anil.pt", "anil", seed=2)
    assert find_family_checkpoint("omniglot", "maml").name == "omniglot-fomaml.pt"
    assert find_family_checkpoint("omniglot", "anil").name == "omniglot-anil.pt"
    assert (
        find_family_checkpoint("omniglot", "memory") is not None
    )  # any trained encoder beats none
    _write(ckpts / "omniglot-metric.pt", "metric", seed=3)
    assert find_family_checkpoint("omniglot", "memory").name == "omniglot-metric.pt"
    assert find_family_checkpoint("omniglot", "maml").name == "omniglot-fomaml.pt"
    spec = resolve_encoder("omniglot", method="maml")
    assert spec.checkpoint_path == ckpts / "omniglot-fomaml.pt"
    assert spec.preprocessing == GREY and spec.embed_dim == 8
    assert find_encoder("omniglot").check_available() is None


def test_load_encoder_from_family_and_adapter_state(resources: Path) -> None:
    ckpts = resources / "checkpoints"
    model = _write(ckpts / "omniglot-fomaml.pt", "fomaml", seed=1)
    plan = plan_device("cpu")
    loaded = load_encoder("omniglot", plan, method="fomaml")
    assert loaded.adapter_method == "fomaml"
    assert torch.equal(loaded.adapter_state["scale"], torch.tensor([2.0]))
    assert loaded.metadata == {"command": "test"}
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))
    # maml falls back to the fomaml file: same encoder, but its adapter state is not maml's
    fallback = load_encoder("omniglot", plan, method="maml")
    assert fallback.adapter_state is None and fallback.adapter_method == "fomaml"


def test_checkpoint_path_is_an_encoder(tmp_path: Path, resources: Path) -> None:
    path = tmp_path / "mine.pt"
    _write(path, None)
    spec = resolve_encoder(str(path))
    assert spec.name == "mine" and spec.checkpoint_path == path and spec.arch_name == "conv4"
    loaded = load_encoder(path, plan_device("cpu"), method="metric")
    assert loaded.adapter_state is None and loaded.model.embed_dim == 8
    with pytest.raises(CheckpointError, match="not found"):
        resolve_encoder(str(tmp_path / "missing.pt"))


def test_cache_id_changes_with_the_file(tmp_path: Path, resources: Path) -> None:
    path = tmp_path / "mine.pt"
    _write(path, None, seed=1)
    first = resolve_encoder(path).cache_id
    _write(path, None, seed=2)
    import os

    os.utime(path, ns=(1, 1))
    assert resolve_encoder(path).cache_id != first
    assert resolve_encoder("conv4").cache_id == "conv4"


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UsageError) as info:
        resolve_encoder("vgg16")
    assert "efficientnet-lite0" in str(info.value) and "photos" in str(info.value)


def test_names_are_case_insensitive() -> None:
    assert resolve_encoder("Conv4").name == "conv4"


def test_default_encoder_follows_photos_checkpoint(resources: Path) -> None:
    assert default_encoder_name() == "efficientnet-lite0"
    assert registry.DEFAULT_ENCODER == "efficientnet-lite0"
    _write(resources / "checkpoints" / "photos-memory.pt", "memory")
    assert default_encoder_name() == "photos"
    assert registry.DEFAULT_ENCODER == "photos"


def test_resources_dir_defaults_to_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEWSHOT_GUI_RESOURCES", raising=False)
    assert registry.resources_dir() == Path(registry.__file__).resolve().parents[2] / "resources"


def test_family_checkpoints_name_each_file_and_its_methods(resources: Path) -> None:
    ckpts = resources / "checkpoints"
    merged = {f"{m}.scale": torch.tensor([1.0]) for m in ("metalstm", "memory", "metric")}
    _write(ckpts / "photos.pt", "multi", state=merged)
    _write(ckpts / "omniglot-anil.pt", "anil")
    _write(ckpts / "omniglot-metric.pt", "metric")
    (ckpts / "omniglot-memory.pt").write_bytes(b"damaged")
    assert [(p.name, m) for p, m in family_checkpoints("photos")] == [
        ("photos.pt", ["metric", "memory", "metalstm"])
    ]
    assert [(p.name, m) for p, m in family_checkpoints("omniglot")] == [
        ("omniglot-anil.pt", ["anil"]),
        ("omniglot-memory.pt", []),
        ("omniglot-metric.pt", ["metric"]),
    ]
    spec = resolve_encoder("photos", method="memory")
    assert spec.checkpoint_path == ckpts / "photos.pt" and spec.name == "photos"


def test_resnet50_preprocessing_is_its_weights_own_and_changes_the_cache_key() -> None:
    """IMAGENET1K_V2 declares resize 232 (the hand-copied table said 256): a corrected
    preprocessing must not reuse embeddings cached with the old one."""
    from torchvision.models import ResNet50_Weights

    spec = resolve_encoder("resnet50")
    declared = ResNet50_Weights.IMAGENET1K_V2.transforms()
    assert (spec.preprocessing.resize, spec.preprocessing.crop) == (232, 224)
    assert [spec.preprocessing.resize] == list(declared.resize_size)
    old = dataclasses.replace(
        spec, preprocessing=dataclasses.replace(spec.preprocessing, resize=256)
    )
    assert embedding_cache_id(spec) != embedding_cache_id(old)
    assert spec.cache_id == old.cache_id == "resnet50"  # the weights did not change


def test_weights_id_is_part_of_the_cache_key() -> None:
    spec = resolve_encoder("conv4")
    assert embedding_cache_id(dataclasses.replace(spec, weights_id="v2")) != (
        embedding_cache_id(spec)
    )


def test_listing_names_builds_nothing() -> None:
    """Names alone (the chooser, an unknown-name message) import no model library; resolving
    conv4 or omniglot needs neither timm nor torchvision (fresh interpreter)."""
    code = (
        "import sys\n"
        "from fewshot_gui.encoders.registry import encoder_names, resolve_encoder\n"
        "assert 'photos' in encoder_names()\n"
        "resolve_encoder('conv4'); resolve_encoder('omniglot')\n"
        "print(sorted(m for m in ('timm', 'torchvision') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stderr
