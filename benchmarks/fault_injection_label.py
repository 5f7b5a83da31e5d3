"""Kill ``fewshot-gui label`` at random moments on a shared cache; the next run must be right.

A base folder (Flowers-102 when present, else synthetic images) is labeled once with a cache of its
own: the reference labels. Then each trial makes a new folder of symbolic links to the base images
(new paths: new cache keys, so every trial writes to the cache), starts ``fewshot-gui
label`` on it in a child process with the shared cache and SIGKILLs it after a random delay (for 80 %
of the trials uniform over the embedding time after the run's first cache write, for the rest over a
whole cold run, start-up included), then labels the same folder again to completion and
compares its CSV with the reference: every image has a row with a label (0 lost) equal to the
reference label (0 wrong). At the end the base images' hashes are compared with those taken before.

    python benchmarks/fault_injection_label.py --kills 50
    python benchmarks/fault_injection_label.py --kills 50 --encoder photos --classes 3

Prints one line per trial and a summary: kills, kills that landed while the run was writing the cache
(its data file grew), lost, wrong, warnings printed by the completing runs; exits 1 on any loss.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOWERS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flowers102"


def _hashes(files: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _build(base: Path, classes: int, per_class: int) -> tuple[Path, Path]:
    """Support and image folders of links to real images (or synthetic images when absent)."""
    from fewshot_gui.bench.synthetic import make_class_folders

    support, images = base / "support", base / "images"
    if FLOWERS.is_dir():
        sources = {
            name: sorted((FLOWERS / name).iterdir())[: per_class + 2]
            for name in sorted(os.listdir(FLOWERS))[:classes]
        }
    else:
        sources = make_class_folders(base / "drawn", classes, per_class + 2)
    for name, files in sources.items():
        (support / name).mkdir(parents=True)
        images.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            target = support / name / f.name if i < 2 else images / f"{name}_{f.name}"
            target.symlink_to(f)
    return support, images


def _labels(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            Path(r["path"]).name: r["label"] or f"error: {r['error']}"
            for r in csv.DictReader(handle)
        }


def _command(args, support: Path, images: Path, cache: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "fewshot_gui", "label", str(support), str(images), "--out", str(out),
        "--encoder", args.encoder, "--device", "cpu", "--cache-dir", str(cache), "--quiet",
    ]  # fmt: skip


def _data_size(cache: Path) -> int:
    return sum(p.stat().st_size for p in cache.rglob("embeddings.f16"))


def _trial(args, rng, root: Path, trial: int, paths: dict, reference: dict, times) -> tuple:
    """One kill and one completing run; returns (landed, lost, wrong, warnings)."""
    support, images, cache = paths["support"], paths["images"], paths["cache"]
    folder = root / f"trial{trial}"
    folder.mkdir()
    names = sorted(os.listdir(images))
    for name in names:  # all of them: labels may depend on the folder (transductive refinement)
        (folder / name).symlink_to((images / name).resolve())
    out = root / f"trial{trial}.csv"
    size = _data_size(cache)
    command = _command(args, support, folder, cache, out)
    start = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    if rng.random() < args.anywhere:  # any moment of a cold run
        time.sleep(rng.uniform(0, times[0]))
    else:  # a moment after the run's first write to the cache, while it embeds
        while process.poll() is None and _data_size(cache) == size:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, max(times[0] - times[1], 0.5)))
    delay = time.perf_counter() - start
    finished = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    landed = _data_size(cache) > size and not finished
    done = subprocess.run(command, capture_output=True, text=True)
    got = _labels(out) if done.returncode == 0 else {}
    expected = {n: reference[n] for n in os.listdir(folder)}
    lost = sum(n not in got or got[n].startswith("error") for n in expected)
    wrong = sum(
        n in got and got[n] != label and not got[n].startswith("error")
        for n, label in expected.items()
    )
    warned = sum(line.startswith("warning") for line in done.stderr.splitlines())
    state = "finished first" if finished else ("after cache writes" if landed else "before writes")
    print(
        f"trial {trial:3d}: {len(expected):3d} images, kill at {delay:4.1f} s ({state}); "
        f"next run exit {done.returncode}, lost {lost}, wrong {wrong}, warnings {warned}",
        flush=True,
    )
    return landed, lost, wrong, warned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--encoder", default="conv4")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--anywhere",
        type=float,
        default=0.2,
        help="share of kills at any moment (the rest: after the run's first cache write)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="fault-label-") as tmp:
        root = Path(tmp)
        support, images = _build(root / "base", args.classes, args.per_class)
        inputs = sorted({p.resolve() for p in (root / "base").rglob("*") if p.is_file()})
        before = _hashes(inputs)
        times = []
        for out in ("ref.csv", "ref2.csv"):  # cold, then cached
            start = time.perf_counter()
            command = _command(args, support, images, root / "ref-cache", root / out)
            subprocess.run(command, check=True)
            times.append(time.perf_counter() - start)
        reference = _labels(root / "ref.csv")
        assert reference == _labels(root / "ref2.csv"), "a cached run differs from the cold run"
        print(f"{len(reference)} images, encoder {args.encoder}: cold run {times[0]:.1f} s, "
              f"cached {times[1]:.1f} s", flush=True)  # fmt: skip
        paths = {"support": support, "images": images, "cache": root / "shared-cache"}
        totals = [0, 0, 0, 0]
        for trial in range(args.kills):
            result = _trial(args, rng, root, trial, paths, reference, times)
            totals = [a + b for a, b in zip(totals, result, strict=True)]
        landed, lost, wrong, warned = totals
        unchanged = _hashes(inputs) == before
        print(
            f"SUMMARY: {args.kills} kills ({landed} after the run had written to the cache), "
            f"lost {lost}, wrong {wrong}, warnings {warned}, input files unchanged: {unchanged}"
        )
        return 0 if lost == wrong == 0 and unchanged else 1


if __name__ == "__main__":
    raise SystemExit(main())
