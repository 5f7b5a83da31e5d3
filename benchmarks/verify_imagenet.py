"""Check that EfficientNet-Lite0's packaged ImageNet weights are loaded right: print its top-5
ImageNet predictions for a few Flowers-102 photos of daisy-like flowers (ImageNet class 985 is
'daisy'), and a summary per class with the right preprocessing (mean = std = 0.5) beside the wrong
one (ImageNet mean/std), which should do visibly worse.

    python benchmarks/verify_imagenet.py [--data ../shared/datasets/flowers102] [--per-class 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from fewshot_gui.data.decode import decode_image
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.pretrained import (
    efficientnet_lite0,
    efficientnet_lite_preprocessing,
    torchvision_preprocessing,
)

EFFICIENTNET_LITE0_PREPROCESSING = efficientnet_lite_preprocessing(0)
IMAGENET_PREPROCESSING = torchvision_preprocessing("resnet18")  # ImageNet mean/std

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "flowers102"
DAISY = 985
FLOWER_CLASSES = {984: "rapeseed", 985: "daisy", 986: "yellow lady's slipper"}
DEFAULT_CLASSES = ("sunflower", "oxeye_daisy", "barbeton_daisy", "black-eyed_susan", "osteospermum")


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names (shipped inside torchvision; no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def top5(model: torch.nn.Module, paths: list[Path], prep: Preprocessing) -> torch.Tensor:
    """``(N, 1000)`` softmax probabilities for ``paths``."""
    images = [decode_image(str(p)) for p in paths]
    for image in images:
        image.load()  # decoded in full: Preprocessing's JPEG draft check trips on Pillow ≥ 11
    batch = torch.stack([torch.from_numpy(prep.to_uint8(image)) for image in images])
    with torch.inference_mode():
        return model(prep.normalize(batch)).softmax(dim=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--classes", nargs="+", default=list(DEFAULT_CLASSES))
    parser.add_argument("--per-class", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no data set at {args.data}", file=sys.stderr)
        return 2
    names = imagenet_categories()
    model = efficientnet_lite0(with_classifier=True)
    wrong = dataclasses.replace(
        EFFICIENTNET_LITE0_PREPROCESSING,
        mean=IMAGENET_PREPROCESSING.mean,
        std=IMAGENET_PREPROCESSING.std,
    )
    print(f"{'class':18} {'daisy top-1':>11} {'daisy top-5':>11} {'P(daisy)':>9}   (wrong norm)")
    lines = []
    for cls in args.classes:
        paths = sorted((args.data / cls).glob("*.jpg"))[: args.per_class]
        if not paths:
            continue
        summary = []
        for prep in (EFFICIENTNET_LITE0_PREPROCESSING, wrong):
            probs = top5(model, paths, prep)
            best = probs.topk(5, dim=1).indices
            summary.append(
                (
                    (best[:, 0] == DAISY).float().mean().item(),
                    (best == DAISY).any(dim=1).float().mean().item(),
                    probs[:, DAISY].mean().item(),
                )
            )
            if prep is EFFICIENTNET_LITE0_PREPROCESSING:
                for path, row in zip(paths, probs, strict=True):
                    values, indices = row.topk(5)
                    shown = ", ".join(
                        f"{i} {names[i]} {v:.2f}"
                        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
                    )
                    lines.append(f"{cls}/{path.name}: {shown}")
        (a1, a5, ap), (b1, b5, bp) = summary
        print(f"{cls:18} {a1:11.0%} {a5:11.0%} {ap:9.2f}   ({b1:.0%} / {b5:.0%} / {bp:.2f})")
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
