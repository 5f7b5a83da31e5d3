"""Preprocessing that travels with an encoder: resize + centre crop on the CPU (in loader workers,
as uint8), normalisation on the device (as float). Splitting it there keeps host→device copies small.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize``, centre-crop ``crop``×``crop``, scale to [0, 1],
    then ``(x - mean) / std`` per channel. ``channels`` is 3 (RGB) or 1 (grayscale)."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    channels: int = 3

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Preprocessing:
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_uint8(self, image: Image.Image) -> np.ndarray:
        """RGB (or L) PIL image → ``(channels, crop, crop)`` uint8 array.

        Uses JPEG draft mode when the image is still a lazily decoded JPEG and at least 2× larger
        than needed (decoding at 1/2, 1/4 or 1/8 scale is much faster).
        """
        if image.format == "JPEG" and getattr(image, "_im", None) is None:  # not decoded yet
            image.draft("RGB" if self.channels == 3 else "L", (self.resize, self.resize))
        image = image.convert("RGB" if self.channels == 3 else "L")
        w, h = image.size
        scale = self.resize / min(w, h)
        new_size = (max(self.crop, round(w * scale)), max(self.crop, round(h * scale)))
        if new_size != (w, h):
            image = image.resize(new_size, _RESAMPLE[self.interpolation], reducing_gap=3.0)
        w, h = image.size
        left, top = (w - self.crop) // 2, (h - self.crop) // 2
        image = image.crop((left, top, left + self.crop, top + self.crop))
        array = np.asarray(image, dtype=np.uint8)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return np.ascontiguousarray(array)

    def normalize(self, batch: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``(N, C, H, W)`` uint8 (any device) → normalised float ``(N, C, H, W)``."""
        mean = torch.tensor(self.mean, device=batch.device, dtype=dtype).view(1, -1, 1, 1) * 255
        std = torch.tensor(self.std, device=batch.device, dtype=dtype).view(1, -1, 1, 1) * 255
        return (batch.to(dtype) - mean) / std
