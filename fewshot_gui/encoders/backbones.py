"""The classic few-shot backbones, with per-image (non-transductive) normalisation.

Both use GroupNorm instead of BatchNorm: an image's embedding never depends on the other images of
its batch, in training as in evaluation, so labeling one image at a time gives the same answer as
labeling a folder. Input: normalised float ``(N, C, H, W)``; output ``(N, embed_dim)``. They are
registered (by name, with their builders) in :mod:`fewshot_gui.encoders.builtin`.
"""

from __future__ import annotations

import torch
from torch import nn

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.preprocess import Preprocessing


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _conv_block(in_channels: int, out_channels: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.GroupNorm(groups, out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """Conv-4 (Vinyals 2016, Snell 2017): 4 × [conv3×3-``hidden`` → GroupNorm → ReLU → maxpool 2],
    flattened. ``(N, in_channels, S, S)`` → ``(N, hidden · (S // 16)²)``: 64-d at 28×28, 1600-d at
    84×84. ``embed_dim`` is computed for ``image_size``."""

    def __init__(
        self, in_channels: int = 3, hidden: int = 64, image_size: int = 84, norm_groups: int = 8
    ) -> None:
        super().__init__()
        side = image_size
        for _ in range(4):
            side //= 2
        if side < 1:
            raise UsageError(f"conv4 needs images of at least 16×16 pixels, not {image_size}")
        self.in_channels = in_channels
        self.image_size = image_size
        self.embed_dim = hidden * side * side
        self.features = nn.Sequential(
            _conv_block(in_channels, hidden, norm_groups),
            _conv_block(hidden, hidden, norm_groups),
            _conv_block(hidden, hidden, norm_groups),
            _conv_block(hidden, hidden, norm_groups),
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` → ``(N, embed_dim)``."""
        return self.features(x).flatten(1)


class _ResidualBlock(nn.Module):
    """3 × conv3×3 with GroupNorm and LeakyReLU, a 1×1 projection shortcut, then maxpool 2."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.GroupNorm(groups, out_channels),
        )
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.body(x) + self.shortcut(x)))


class ResNet12(nn.Module):
    """ResNet-12 (Oreshkin 2018, Lee 2019): 4 residual blocks of widths 64-160-320-640, global
    average pool. ``(N, in_channels, H, W)`` → ``(N, widths[-1])``, whatever H and W (≥ 16)."""

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] | list[int] = (64, 160, 320, 640),
        norm_groups: int = 8,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.in_channels = in_channels
        self.embed_dim = widths[-1]
        blocks = []
        previous = in_channels
        for width in widths:
            blocks.append(_ResidualBlock(previous, width, norm_groups))
            previous = width
        self.blocks = nn.Sequential(*blocks)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, embed_dim)``."""
        return self.blocks(x).mean(dim=(2, 3))


CONV4_PREPROCESSING = Preprocessing(resize=84, crop=84, interpolation="bilinear")
"""84×84 RGB with ImageNet statistics: the input of the built-in ``conv4`` and ``resnet12``."""

OMNIGLOT_PREPROCESSING = Preprocessing(
    resize=28, crop=28, mean=(0.5,), std=(0.5,), interpolation="bilinear", channels=1
)
"""28×28 grey in [-1, 1]: the input of the shipped Omniglot checkpoints."""
