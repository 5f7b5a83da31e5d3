"""Encoders side by side: few-shot accuracy on a domain each has or has not seen, and CPU speed.

For every encoder, data set and shot count: ``evaluate`` (5-way, metric, the same episodes for every
encoder because the seed fixes them) → mean accuracy ± 95 % interval. Then the model's forward
throughput on the CPU at each encoder's own input size, measured in turn in one run (ratios are
what matters on a shared machine).

    python benchmarks/encoder_compare.py                     # Flowers held-out + DTD, 1 and 5 shots
    python benchmarks/encoder_compare.py --encoders photos,efficientnet-lite0 --episodes 300

Flowers is evaluated on the ``photos`` checkpoint's held-out classes (never meta-trained on);
DTD (textures) is a domain no encoder here was trained on.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from fewshot_gui.core.device import plan_device
from fewshot_gui.encoders.registry import find_family_checkpoint, load_encoder
from fewshot_gui.training.evaluate import EvalConfig, run_evaluation

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def data_sets(root: Path) -> dict[str, tuple[Path, str | None]]:
    """Name → (folder, ``--classes-from`` value or None for all classes)."""
    photos = find_family_checkpoint("photos")
    held_out = f"{photos}:val" if photos is not None else None
    return {"flowers-heldout": (root / "flowers102", held_out), "dtd10": (root / "dtd10", None)}


def accuracy_table(args: argparse.Namespace) -> list[str]:
    rows = ["| data | shot | " + " | ".join(args.encoders) + " |"]
    rows.append("|---|---|" + "---|" * len(args.encoders))
    for name, (folder, classes_from) in data_sets(Path(args.data_root)).items():
        if name not in args.datasets or not folder.is_dir():
            continue
        for shot in args.shots:
            cells = []
            for encoder in args.encoders:
                result = run_evaluation(
                    EvalConfig(
                        data_dir=str(folder),
                        encoder=encoder,
                        method="metric",
                        way=5,
                        shot=shot,
                        query=args.query,
                        episodes=args.episodes,
                        seed=args.seed,
                        split="all",
                        classes_from=classes_from,
                        cache_dir=args.cache_dir,
                    )
                )
                cells.append(f"{100 * result['accuracy']:.1f} ± {100 * result['ci95']:.1f}")
                print(f"  {name} {shot}-shot {encoder}: {cells[-1]}", flush=True)
            rows.append(f"| {name} | {shot} | " + " | ".join(cells) + " |")
    return rows


def speed_table(args: argparse.Namespace) -> list[str]:
    """Model-only forward images/s on the CPU at each encoder's input size, median of rounds."""
    plan = plan_device("cpu")
    rows = ["| encoder | input | CPU img/s (model only) |", "|---|---|---|"]
    for encoder in args.encoders:
        loaded = load_encoder(encoder, plan)
        model, size = loaded.model, loaded.spec.preprocessing.crop
        batch = torch.randn(args.batch, 3, size, size).contiguous(memory_format=torch.channels_last)
        model = model.to(memory_format=torch.channels_last)
        rates = []
        with torch.inference_mode():
            model(batch)  # warm-up
            for _ in range(args.rounds):
                start = time.perf_counter()
                model(batch)
                rates.append(args.batch / (time.perf_counter() - start))
        rows.append(f"| {encoder} | {size} px | {statistics.median(rates):.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--encoders", default="efficientnet-lite0,photos,efficientnet-lite1,efficientnet-lite2"
    )
    parser.add_argument("--datasets", default="flowers-heldout,dtd10")
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--query", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=str(SHARED))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    args.encoders = args.encoders.split(",")
    args.datasets = args.datasets.split(",")
    args.shots = [int(s) for s in args.shots.split(",")]
    print(f"5-way metric accuracy (%), {args.episodes} episodes, {args.query} queries per class")
    print("\n".join(accuracy_table(args)))
    if not args.no_speed:
        print(f"\nCPU forward throughput, batch {args.batch}, {torch.get_num_threads()} threads")
        print("\n".join(speed_table(args)))


if __name__ == "__main__":
    main()
