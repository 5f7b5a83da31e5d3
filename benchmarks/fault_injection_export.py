"""Kill ``fewshot-gui export`` at random moments, undo from a new process, count what went wrong.

Each trial builds a folder of small files with distinct random contents and a labels CSV, runs
``fewshot-gui export labels.csv DEST --mode M`` in a child process and kills it — at the k-th
file-system call (``os._exit`` before an ``open``/``write``/``fsync``/``link``/``unlink``/``rename``/
``mkdir``/``symlink``, k uniform over a full run's calls) or by SIGKILL after a random delay while a
slow writer copies. Every other trial then exports again to completion in a new process and checks
DEST (each image's content there exactly once, no partial or temporary file). Finally
``fewshot-gui undo-export DEST --all`` runs in a new process, and the trial checks that every image's
content is back at its path and exists exactly once, and that no other file (partial, temporary)
remains in DEST or beside the images.

Configurations: ``copy``; ``move`` (one filesystem: hard link + unlink); ``move-xdev`` (hard links
refused, so moves copy to a temporary name, fsync, name, unlink — as across filesystems); and with
``--real-xdev DIR`` (a folder on another filesystem, e.g. /dev/shm) ``move-real-xdev``.

    python benchmarks/fault_injection_export.py --kills 60            # 60 kills per configuration
    python benchmarks/fault_injection_export.py --kills 60 --real-xdev /dev/shm

Prints per configuration: kills / landed (the export had started and not finished) / lost /
duplicated / partial, and exits 1 if anything was lost, duplicated or partial.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

KILLED = 99
STEP_CALLS = ("open", "write", "fsync", "link", "unlink", "rename", "mkdir", "symlink")

CHILD = r"""
import json, os, sys, time
cfg = json.loads(sys.argv[1])
from fewshot_gui.data import export_files
if cfg.get("xdev"):
    export_files.hardlink = lambda src, dst: False
export_files.CHUNK = cfg["chunk"]
if cfg.get("slow"):
    _write = export_files.write_all
    def slow_write(fd, data):
        time.sleep(cfg["slow"])
        _write(fd, data)
    export_files.write_all = slow_write
steps = [0]
def counted(fn):
    def call(*args, **kwargs):
        steps[0] += 1
        if steps[0] == cfg.get("kill_at"):
            os._exit(KILLED)
        return fn(*args, **kwargs)
    return call
for name in STEP_CALLS:
    setattr(os, name, counted(getattr(os, name)))
from fewshot_gui.cli import main
code = main(cfg["argv"])
if cfg.get("count_to"):
    with open(cfg["count_to"], "w") as handle:
        handle.write(str(steps[0]))
sys.exit(code)
""".replace("KILLED", str(KILLED)).replace("STEP_CALLS", repr(STEP_CALLS))

CONFIGS = {
    "copy": {"mode": "copy", "xdev": False},
    "move": {"mode": "move", "xdev": False},
    "move-xdev": {"mode": "move", "xdev": True},
    "move-real-xdev": {"mode": "move", "xdev": False, "real_xdev": True},
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_sources(root: Path, rng: random.Random, count: int) -> dict[Path, str]:
    """``count`` files with distinct random contents (1–40 KB), some sharing a name."""
    files = {}
    for i in range(count):
        path = root / f"d{i % 3}" / f"img_{i // 3:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1_000, 40_000)))
        files[path] = digest(path)
    return files


def write_labels(path: Path, sources: list[Path]) -> None:
    from fewshot_gui.data.labels_csv import LabelRow
    from fewshot_gui.data.labels_csv import write_labels as write

    classes = ["cat", "dog", "=bird"]
    rows = [LabelRow(str(p), classes[i % 3], 0.9) for i, p in enumerate(sources)]
    rows[-1] = LabelRow(str(sources[-1]), "unknown", 0.2)
    rows.append(LabelRow(str(path.parent / "broken.jpg"), "", None, error="cannot read"))
    write(path, rows)


def run_child(cfg: dict, kill_after: float | None = None) -> int:
    command = [sys.executable, "-c", CHILD, json.dumps(cfg)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    if proc.returncode not in (0, KILLED, -signal.SIGKILL):
        raise RuntimeError(f"child failed ({proc.returncode}): {err.decode()[-2000:]}")
    return proc.returncode


def all_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]


@dataclass
class Tally:
    kills: int = 0
    landed: int = 0
    lost: int = 0
    duplicated: int = 0
    partial: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self, name: str) -> str:
        return (
            f"{name:15s} kills {self.kills:4d}  landed {self.landed:4d}  lost {self.lost}  "
            f"duplicated {self.duplicated}  partial {self.partial}"
        )


def check(
    tally: Tally, sources: dict[Path, str], src_root: Path, dest: Path, stage: str, mode: str
) -> None:
    """After undo (``stage == "undo"``): every content back at its path, once, nothing else.
    After a complete re-export: every content in DEST once (and, moved, nowhere else), nothing
    partial."""
    wanted = set(sources.values())
    counts: dict[str, int] = {}
    here = [p for p in all_files(dest) if p.name != ".fewshot-journal.jsonl"]
    for path in [*all_files(src_root), *here]:
        d = digest(path) if path.is_file() and not path.is_symlink() else None
        if d not in wanted or path.name.endswith(".tmp"):
            tally.partial += 1
            tally.problems.append(f"{stage}: partial, temporary or stray file {path}")
            continue
        if stage == "undo" or mode == "move" or path in here:
            counts[d] = counts.get(d, 0) + 1
    if stage == "undo":
        for path, d in sources.items():
            if not path.is_file() or digest(path) != d:
                tally.lost += 1
                tally.problems.append(f"undo: {path} not restored")
        tally.partial += len(here)
        tally.problems += [f"undo: left in DEST {p}" for p in here]
    for d in wanted:
        n = counts.get(d, 0)
        if n == 0 and stage != "undo":
            tally.lost += 1
            tally.problems.append(f"{stage}: a content is missing")
        elif n > 1:
            tally.duplicated += 1
            tally.problems.append(f"{stage}: a content exists {n} times")


def landed(dest: Path) -> bool:
    journal = dest / ".fewshot-journal.jsonl"
    if not journal.exists():
        return False
    events = [line for line in journal.read_text(errors="replace").splitlines() if '"ev"' in line]
    return any('"ev": "export"' in e for e in events) and not any(
        '"ev": "end"' in e for e in events
    )


def trial(
    name: str,
    tally: Tally,
    rng: random.Random,
    work: Path,
    how: str,
    files: int,
    real_xdev: Path | None,
    steps_cache: dict[str, int],
) -> None:
    cfg = CONFIGS[name]
    base = Path(tempfile.mkdtemp(dir=work))
    src_base = Path(tempfile.mkdtemp(dir=real_xdev)) if cfg.get("real_xdev") else base
    try:
        src_root, dest, labels = src_base / "images", base / "sorted", base / "labels.csv"
        sources = make_sources(src_root, rng, files)
        write_labels(labels, sorted(sources))
        common = {"xdev": cfg["xdev"], "chunk": 4096}
        argv = ["export", str(labels), str(dest), "--mode", cfg["mode"], "--quiet"]
        if name not in steps_cache:  # a full run's number of calls, measured once
            count_file = base / "steps"
            probe = Path(tempfile.mkdtemp(dir=work))
            shutil.copytree(src_root, probe / "images")
            write_labels(probe / "labels.csv", sorted(probe.glob("images/*/*")))
            probe_argv = ["export", str(probe / "labels.csv"), str(probe / "sorted")]
            run_child(
                {
                    **common,
                    "argv": [*probe_argv, "--mode", cfg["mode"]],
                    "count_to": str(count_file),
                }
            )
            steps_cache[name] = int(count_file.read_text())
            shutil.rmtree(probe)
        if how == "step":
            run_child({**common, "argv": argv, "kill_at": rng.randint(1, steps_cache[name])})
        else:
            run_child({**common, "argv": argv, "slow": 0.002}, kill_after=rng.uniform(0.1, 1.2))
        tally.kills += 1
        tally.landed += landed(dest)
        if rng.random() < 0.5:  # export again to completion, then check DEST
            run_child({**common, "argv": argv})
            check(tally, sources, src_root, dest, "re-export", cfg["mode"])
        if (dest / ".fewshot-journal.jsonl").exists():
            run_child({**common, "argv": ["undo-export", str(dest), "--all", "--quiet"]})
        check(tally, sources, src_root, dest, "undo", cfg["mode"])
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if src_base != base:
            shutil.rmtree(src_base, ignore_errors=True)


def run_trials(
    configs: list[str],
    kills: int,
    how: str = "both",
    files: int = 12,
    seed: int = 0,
    real_xdev: Path | None = None,
    work: Path | None = None,
) -> dict[str, Tally]:
    """``kills`` kills per configuration; ``how``: ``step``, ``signal`` or ``both`` (alternating)."""
    rng = random.Random(seed)
    tallies = {name: Tally() for name in configs}
    steps_cache: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for name in configs:
            for i in range(kills):
                kind = how if how != "both" else ("step", "signal")[i % 2]
                trial(name, tallies[name], rng, Path(tmp), kind, files, real_xdev, steps_cache)
    return tallies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=60, help="kills per configuration")
    parser.add_argument("--how", choices=("step", "signal", "both"), default="both")
    parser.add_argument("--files", type=int, default=12, help="images per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real-xdev", type=Path, default=None, help="a folder on another filesystem"
    )
    args = parser.parse_args()
    configs = ["copy", "move", "move-xdev"] + (["move-real-xdev"] if args.real_xdev else [])
    start = time.perf_counter()
    tallies = run_trials(configs, args.kills, args.how, args.files, args.seed, args.real_xdev)
    bad = False
    for name, tally in tallies.items():
        print(tally.line(name))
        for problem in tally.problems[:10]:
            print("   ", problem)
        bad = bad or bool(tally.lost or tally.duplicated or tally.partial)
    total = Tally(*(sum(getattr(t, f) for t in tallies.values()) for f in ("kills", "landed")))
    for f in ("lost", "duplicated", "partial"):
        setattr(total, f, sum(getattr(t, f) for t in tallies.values()))
    print(total.line("total"), f"({time.perf_counter() - start:.0f} s, kill by {args.how})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
