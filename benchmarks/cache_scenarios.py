"""Every damaged / full / unwritable cache scenario of issue 12, through ``fewshot-gui label``.

Builds a folder (Flowers-102 when present, else synthetic; see fault_injection_label.py), labels it
once with a clean cache (the reference), then for each scenario copies that warm cache, damages it,
runs ``fewshot-gui label`` in a child process and prints one line: exit status, the warning lines,
how many labels equal the reference, and what the next run says (a healed cache says nothing).
A full disk is a tiny tmpfs, a read-only cache a tmpfs remounted read-only, an unwritable folder one
made immutable with ``chattr +i``: those need root (as on this box) and are skipped otherwise.

    python benchmarks/cache_scenarios.py                  # conv4 (fast)
    python benchmarks/cache_scenarios.py --encoder photos # the issue's setting (1280-d rows)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from fault_injection_label import _build, _command, _labels

OLD_VERSION = os.environ.get("FEWSHOT_OLD_TREE")  # a checkout of format 1, for the upgrade case


class Bench:
    def __init__(self, args, root: Path) -> None:
        self.args, self.root = args, root
        self.support, self.images = _build(root / "base", args.classes, args.per_class)
        self.other_support, self.other = _build(root / "other", 2, 20)  # a second folder
        self.ref_cache = root / "ref-cache"
        code, _ = self.label(self.ref_cache, root / "ref.csv")
        assert code == 0
        self.reference = _labels(root / "ref.csv")

    def label(self, cache: Path, out: Path, images: Path | None = None, env=None):
        command = _command(self.args, self.support, images or self.images, cache, out)
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode not in (0, 2):
            print(done.stderr[-3000:])
        warnings = [line for line in done.stderr.splitlines() if line.startswith("warning")]
        return done.returncode, warnings

    def warm(self, name: str) -> tuple[Path, Path]:
        cache = self.root / name
        shutil.copytree(self.ref_cache, cache)
        return cache, next((cache / "embeddings").iterdir())

    def report(self, name: str, cache: Path, again: bool = True, images: Path | None = None):
        out = self.root / f"{name.replace(' ', '_')}.csv"
        code, warnings = self.label(cache, out, images)
        got = _labels(out) if out.exists() else {}
        reference = self.reference if images is None else {n: self.reference[n] for n in got}
        equal = sum(got.get(n) == label for n, label in reference.items())
        line = (
            f"{name} → exit {code}, {len(warnings)} warning line(s)"
            + "".join(f" «{w}»" for w in warnings)
            + f", {equal}/{len(reference)} labels equal to a clean run's"
        )
        if again:
            code2, warnings2 = self.label(cache, self.root / "again.csv", images)
            line += f"; next run: exit {code2}, {len(warnings2)} warning line(s)"
        print(line, flush=True)


def _rows(folder: Path, change: Callable[[np.ndarray], None]) -> None:
    with sqlite3.connect(folder / "index.sqlite") as db:
        dim = int(db.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()[0])
    rows = np.fromfile(folder / "embeddings.f16", np.float16).reshape(-1, dim)
    change(rows)
    rows.tofile(folder / "embeddings.f16")


def _garble(rows: np.ndarray) -> None:
    rows[::2] = np.random.default_rng(1).normal(size=rows[::2].shape)


def _reverse(rows: np.ndarray) -> None:
    rows[:] = rows[::-1].copy()


def _truncate(path: Path, size: int) -> None:
    os.truncate(path, max(size, 0))


DAMAGE: dict[str, Callable[[Path], object]] = {
    "truncate embeddings.f16 to half": lambda f: _truncate(
        f / "embeddings.f16", (f / "embeddings.f16").stat().st_size // 2
    ),
    "finite garbage in every other row": lambda f: _rows(f, _garble),
    "rows swapped (order reversed)": lambda f: _rows(f, _reverse),
    "embeddings.f16 short by 100 bytes": lambda f: _truncate(
        f / "embeddings.f16", (f / "embeddings.f16").stat().st_size - 100
    ),
    "embeddings.f16 empty": lambda f: _truncate(f / "embeddings.f16", 0),
    "embeddings.f16 missing": lambda f: (f / "embeddings.f16").unlink(),
    "index.sqlite deleted": lambda f: (f / "index.sqlite").unlink(),
    "index.sqlite garbage": lambda f: (f / "index.sqlite").write_bytes(os.urandom(32768)),
    "index.sqlite truncated to half": lambda f: _truncate(
        f / "index.sqlite", (f / "index.sqlite").stat().st_size // 2
    ),
}


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[bool]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True).returncode == 0  # fmt: skip
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=False)


def issue_sequence(bench: Bench) -> None:
    """Truncate to half, label another folder, then the first again (the issue's report)."""
    cache, folder = bench.warm("issue")
    DAMAGE["truncate embeddings.f16 to half"](folder)
    out = bench.root / "issue-other.csv"
    command = _command(bench.args, bench.other_support, bench.other, cache, out)
    done = subprocess.run(command, capture_output=True, text=True)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning")]
    print(
        f"(issue) other folder after the truncation → exit {done.returncode}, warnings {warnings}"
    )
    bench.report("(issue) then the first folder again", cache, again=False)


def replaced_content(bench: Bench) -> None:
    """An image replaced by another's bytes, same size, mtime restored (touch -r)."""
    images = bench.root / "copied images"
    shutil.copytree(bench.images, images, symlinks=False)
    cache = bench.root / "replaced-cache"
    bench.label(cache, bench.root / "replaced-before.csv", images)
    names = sorted(os.listdir(images))
    target = images / names[0]
    other = next(images / n for n in names if bench.reference[n] != bench.reference[names[0]]
                 and (images / n).stat().st_size <= target.stat().st_size)  # fmt: skip
    stat = target.stat()
    target.write_bytes(other.read_bytes().ljust(stat.st_size, b"\0"))  # bytes after EOI: ignored
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    out = bench.root / "replaced-after.csv"
    code, warnings = bench.label(cache, out, images)
    label = _labels(out)[target.name]
    print(
        f"image replaced by another of the same size, mtime restored → exit {code}, "
        f"{len(warnings)} warnings, its label {label!r} (the other image's: "
        f"{bench.reference[other.name]!r}; before: {bench.reference[target.name]!r})"
    )


def full_and_unwritable(bench: Bench) -> None:
    size = max(32, len(bench.reference))  # KB: the index and about a third of the rows
    with _tmpfs(bench.root / "tiny", f"{size}k") as mounted:
        if mounted:
            name = f"full disk (a {size} KB tmpfs) under an empty cache"
            bench.report(name, bench.root / "tiny", False)
        else:
            print("full disk: skipped (cannot mount a tmpfs here)")
    half = bench.root / "half-images"
    half.mkdir()
    for name in sorted(os.listdir(bench.images))[::2]:
        (half / name).symlink_to((bench.images / name).resolve())
    half_cache = bench.root / "half-cache"
    bench.label(half_cache, bench.root / "half.csv", half)
    with _tmpfs(bench.root / "ro", "64m") as mounted:
        if mounted:
            shutil.copytree(half_cache, bench.root / "ro" / "cache")
            subprocess.run(["mount", "-o", "remount,ro", str(bench.root / "ro")], check=True)
            bench.report("read-only cache (tmpfs remounted ro), half the images cached",
                         bench.root / "ro" / "cache", False)  # fmt: skip
            bench.report("read-only file system, no cache yet", bench.root / "ro" / "new", False)
        else:
            print("read-only: skipped (cannot mount a tmpfs here)")
    folder = next((half_cache / "embeddings").iterdir())
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        try:
            bench.report("cache folder unwritable (chattr +i), half the images cached",
                         half_cache, False)  # fmt: skip
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
    else:
        print("unwritable folder: skipped (chattr +i not possible here)")
    blocked = bench.root / "a file"
    blocked.write_text("in the way")
    bench.report("cache folder cannot be created (a file in the way)", blocked / "cache", False)


def concurrent(bench: Bench) -> None:
    cache = bench.root / "concurrent"
    outs = [bench.root / f"concurrent{i}.csv" for i in range(3)]
    command = [_command(bench.args, bench.support, bench.images, cache, out) for out in outs]
    processes = [subprocess.Popen(c, stderr=subprocess.DEVNULL) for c in command]
    codes = [p.wait() for p in processes]
    equal = [sum(_labels(o).get(n) == v for n, v in bench.reference.items()) for o in outs]
    print(f"three label runs at once on one new cache → exits {codes}, labels equal {equal} "
          f"of {len(bench.reference)}")  # fmt: skip


def old_format(bench: Bench) -> None:
    if not OLD_VERSION:
        print("cache of the previous format: skipped (set FEWSHOT_OLD_TREE to an old checkout)")
        return
    cache = bench.root / "old-format"
    env = {**os.environ, "PYTHONPATH": OLD_VERSION}
    bench.label(cache, bench.root / "old.csv", env=env)
    bench.report("cache written by the previous version (format 1)", cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="conv4")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=28)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cache-scenarios-") as tmp:
        bench = Bench(args, Path(tmp))
        print(f"{len(bench.reference)} images, encoder {args.encoder}", flush=True)
        for name, damage in DAMAGE.items():
            cache, folder = bench.warm(name.replace(" ", "_"))
            damage(folder)
            bench.report(name, cache)
        issue_sequence(bench)
        replaced_content(bench)
        full_and_unwritable(bench)
        concurrent(bench)
        old_format(bench)


if __name__ == "__main__":
    sys.exit(main())
