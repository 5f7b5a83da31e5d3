"""Conv-4 and ResNet-12: shapes, embed_dim, and per-image (non-transductive) normalisation."""

from __future__ import annotations

import pytest
import torch

from fewshot_gui.core.errors import CheckpointError, UsageError
from fewshot_gui.encoders.backbones import Conv4, ResNet12
from fewshot_gui.encoders.checkpoint import build_architecture

BACKBONES = ("conv4", "resnet12")


@pytest.mark.parametrize(
    ("channels", "size", "expected"), [(1, 28, 64), (3, 84, 1600), (3, 32, 256)]
)
def test_conv4_embedding_size(channels: int, size: int, expected: int) -> None:
    model = Conv4(in_channels=channels, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(3, channels, size, size))
    assert out.shape == (3, expected)
    assert model.embed_dim == expected


def test_resnet12_embedding_size_and_widths() -> None:
    model = ResNet12(in_channels=1, widths=(8, 16, 24, 32)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 40, 40))
    assert out.shape == (2, 32) and model.embed_dim == 32
    assert ResNet12().embed_dim == 640


def test_conv4_refuses_images_smaller_than_16() -> None:
    with pytest.raises(UsageError, match="16"):
        Conv4(image_size=12)


def test_no_batchnorm_anywhere() -> None:
    for name in BACKBONES:
        model = build_architecture(name)
        assert not any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()
        )
        assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())


@pytest.mark.parametrize("train_mode", [False, True])
@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("conv4", {"in_channels": 1, "image_size": 28}, (1, 28, 28)),
        ("resnet12", {"in_channels": 3, "widths": (16, 32, 48, 64)}, (3, 32, 32)),
    ],
)
def test_embedding_alone_equals_embedding_in_batch(
    name: str, kwargs: dict, shape: tuple[int, ...], train_mode: bool
) -> None:
    torch.manual_seed(0)
    model = build_architecture(name, kwargs).train(train_mode)
    image = torch.randn(1, *shape)
    others = torch.randn(7, *shape) * 3 + 2  # very different batch statistics
    with torch.no_grad():
        alone = model(image)
        in_batch = model(torch.cat([others[:3], image, others[3:]]))[3:4]
    torch.testing.assert_close(alone, in_batch, atol=1e-5, rtol=1e-4)


def test_unknown_architecture_lists_known() -> None:
    with pytest.raises(CheckpointError, match="conv4") as info:
        build_architecture("vgg")
    assert "resnet12" in str(info.value) and "efficientnet-lite0" in str(info.value)
    assert "photos" not in str(info.value)  # a family has no architecture of its own
