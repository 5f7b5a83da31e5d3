"""Local engine vs ``--engine ray`` (a local Ray instance) on the same real photos, back to back.

    python benchmarks/cluster_throughput.py [--data ../shared/datasets/flowers102] [--images 2000]

Builds (under ``--work``, outside the repository) a support folder of ``--shots`` photos from each
of ``--classes`` Flowers classes and a folder of ``--images`` other photos of those classes (symbolic
links: nothing is copied), then runs ``fewshot-gui label`` with each engine in turn (each run with
a fresh embedding cache, so both embed every image), ``--rounds`` times. Prints wall time and
images/s per run, the ray/local ratio, and how many labels differ (with the largest probability
difference). The machine's load drifts: compare the runs of one invocation; odd rounds run ray
first, so ``--rounds 2`` balances the order.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def build_folders(
    data: Path, work: Path, classes: int, shots: int, images: int
) -> tuple[Path, Path]:
    """Support and image folders of symlinks into ``data`` (the first ``classes`` class folders)."""
    support, folder = work / "support", work / "images"
    for path in (support, folder):
        shutil.rmtree(path, ignore_errors=True)
    names = sorted(p.name for p in data.iterdir() if p.is_dir())[:classes]
    pools = {n: sorted((data / n).iterdir()) for n in names}
    for name, files in pools.items():
        (support / name).mkdir(parents=True)
        for f in files[:shots]:
            (support / name / f.name).symlink_to(f)
    rest = [(n, f) for n, files in pools.items() for f in files[shots:]]
    if len(rest) < images:
        sys.exit(f"only {len(rest)} images in {classes} classes; use more --classes")
    step = len(rest) / images
    folder.mkdir(parents=True)
    for i in range(images):
        name, f = rest[int(i * step)]
        (folder / f"{name}__{f.name}").symlink_to(f)
    return support, folder


def label(
    engine: str, support: Path, images: Path, out: Path, cache: Path, extra: list[str]
) -> float:
    """Run ``fewshot-gui label`` once; returns its wall time in seconds."""
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [sys.executable, "-m", "fewshot_gui", "label", str(support), str(images), "--out",
           str(out), "--cache-dir", str(cache), "--device", "cpu", *extra]  # fmt: skip
    if engine == "ray":
        cmd += ["--engine", "ray", "--csv"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{engine} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(f"  {engine}: {done.stderr.strip().splitlines()[-3]}", flush=True)
    return elapsed


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {r["path"]: r for r in csv.DictReader(handle)}


def compare(local: Path, ray_csv: Path) -> str:
    a, b = rows(local), rows(ray_csv)
    same_paths = set(a) == set(b)
    differ = [p for p in a if p in b and a[p]["label"] != b[p]["label"]]
    skip = {"path", "label", "confidence", "error", "unknown_score", "source"}
    worst = 0.0
    for p in a:
        for k, v in a[p].items():
            if k not in skip and v and b.get(p, {}).get(k):
                worst = max(worst, abs(float(v) - float(b[p][k])))
    return (
        f"same files: {same_paths} ({len(a)} rows); labels differing: {len(differ)}; "
        f"largest probability difference: {worst:.2e}; byte-identical CSV: "
        f"{local.read_bytes() == ray_csv.read_bytes()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/datasets/flowers102")
    parser.add_argument("--work", default="/tmp/fewshot-cluster-bench")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--shots", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--encoder", default=None, help="default: the app's default encoder")
    args = parser.parse_args()
    data, work = Path(args.data).resolve(), Path(args.work)
    if not data.is_dir():
        sys.exit(f"no data set at {data}")
    support, images = build_folders(data, work, args.classes, args.shots, args.images)
    extra = ["--encoder", args.encoder] if args.encoder else []
    print(f"{args.images} photos of {args.classes} classes, {args.shots} examples each; "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    for r in range(args.rounds):
        out_ray = work / f"ray-{r}"
        shutil.rmtree(out_ray, ignore_errors=True)
        # odd rounds run ray first: a load that drifts during a round favours neither engine
        runs = {
            "local": lambda r=r: label(
                "local", support, images, work / f"local-{r}.csv", work / "cache-l", extra
            ),
            "ray": lambda r=r, out=out_ray: label(
                "ray", support, images, out, work / "cache-r", extra
            ),
        }
        order = ("local", "ray") if r % 2 == 0 else ("ray", "local")
        times = {name: runs[name]() for name in order}
        t_local, t_ray = times["local"], times["ray"]
        n = args.images
        print(
            f"round {r + 1}: local {t_local:.1f} s ({n / t_local:.2f} img/s), ray {t_ray:.1f} s "
            f"({n / t_ray:.2f} img/s); ray/local throughput ratio {t_local / t_ray:.2f}",
            flush=True,
        )
        print("  " + compare(work / f"local-{r}.csv", out_ray / "labels.csv"), flush=True)


if __name__ == "__main__":
    main()
