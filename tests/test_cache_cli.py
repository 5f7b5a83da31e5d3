"""``fewshot-gui label`` over a damaged, full or unwritable cache: exit 0, the labels of a clean run,
one warning line; and killed runs (SIGKILL) that the next run completes without a wrong label."""

from __future__ import annotations

import csv
import errno
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imagefactory import file_hashes, make_image

from fewshot_gui.cli import main
from fewshot_gui.core import cache_rows
from fewshot_gui.core.cache import EmbeddingCache

COLORS = {"reds": (220, 30, 30), "blues": (30, 40, 220), "greens": (30, 200, 40)}
SIZE = (48, 40)  # every image is a BMP of this size: any one can replace another, same file size


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def _labels(path: Path) -> dict[str, str]:
    return {p: row["label"] or row["error"] for p, row in _rows(path).items()}


class Data:
    def __init__(self, root: Path) -> None:
        rng = np.random.default_rng(0)
        self.root, self.support, self.images = root, root / "support", root / "images"
        for name, color in COLORS.items():
            for i in range(2):
                make_image(self.support / name / f"ex{i}.bmp", size=SIZE, color=color)
            for i in range(8):
                jitter = tuple(int(np.clip(c + rng.integers(-40, 40), 0, 255)) for c in color)
                make_image(self.images / f"{name}_{i}.bmp", size=SIZE, color=jitter)
        self.clean_cache = root / "clean cache"
        self.clean_csv = root / "clean.csv"
        assert main(self.args(self.clean_cache, self.clean_csv, quiet=True)) == 0

    def args(self, cache: Path, out: Path, quiet: bool = False) -> list[str]:
        common = ["--encoder", "conv4", "--device", "cpu", "--cache-dir", str(cache)]
        return [
            "label",
            str(self.support),
            str(self.images),
            "--out",
            str(out),
            *common,
            *(["--quiet"] if quiet else []),
        ]

    def warm_cache(self, tmp_path: Path) -> tuple[Path, Path]:
        """A copy of the clean run's cache, and its encoder folder."""
        cache = tmp_path / "cache"
        shutil.copytree(self.clean_cache, cache)
        return cache, next((cache / "embeddings").iterdir())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return Data(tmp_path_factory.mktemp("cache-cli"))


def _run(data: Data, cache: Path, out: Path, capsys) -> list[str]:
    """Label with the CLI; exit 0, the clean run's labels; returns the warning lines."""
    capsys.readouterr()
    assert main(data.args(cache, out)) == 0
    err = capsys.readouterr().err.splitlines()
    assert _labels(out) == _labels(data.clean_csv)
    clean = _rows(data.clean_csv)
    for path, row in _rows(out).items():
        for name in COLORS:
            assert abs(float(row[name]) - float(clean[path][name])) < 1e-3
    return [line for line in err if line.startswith("warning:")]


def _rewrite_rows(folder: Path, change) -> None:
    path = folder / "embeddings.f16"
    with sqlite3.connect(folder / "index.sqlite") as db:
        dim = int(db.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()[0])
    rows = np.fromfile(path, np.float16).reshape(-1, dim)
    change(rows)
    rows.tofile(path)


def _garble(rows):
    rows[::2] = np.random.default_rng(3).normal(size=rows[::2].shape)  # finite garbage


def _swap(rows):
    rows[[0, 1, 2, 3]] = rows[[3, 2, 1, 0]]


DAMAGE = {
    "truncate data to half": lambda f: os.truncate(
        f / "embeddings.f16", (f / "embeddings.f16").stat().st_size // 2
    ),
    "finite garbage rows": lambda f: _rewrite_rows(f, _garble),
    "swapped rows": lambda f: _rewrite_rows(f, _swap),
    "delete index": lambda f: (f / "index.sqlite").unlink(),
    "delete data": lambda f: (f / "embeddings.f16").unlink(),
    "empty data": lambda f: (f / "embeddings.f16").write_bytes(b""),
    "garbage index": lambda f: (f / "index.sqlite").write_bytes(os.urandom(16384)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_cache_gives_clean_labels_and_one_warning(data, tmp_path, capsys, damage):
    cache, folder = data.warm_cache(tmp_path)
    DAMAGE[damage](folder)
    warnings = _run(data, cache, tmp_path / "out.csv", capsys)
    assert len(warnings) == 1 and "embedding cache" in warnings[0], warnings
    assert _run(data, cache, tmp_path / "again.csv", capsys) == []  # healed


def test_content_swapped_under_a_restored_mtime_is_embedded_again(data, tmp_path, capsys):
    images = tmp_path / "images"
    shutil.copytree(data.images, images)
    args = data.args(tmp_path / "cache", tmp_path / "before.csv")
    args[2] = str(images)
    assert main(args) == 0
    target, other = images / "reds_0.bmp", images / "blues_0.bmp"
    stat = target.stat()
    assert other.stat().st_size == stat.st_size
    target.write_bytes(other.read_bytes())
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # touch -r: mtime restored
    capsys.readouterr()
    args[args.index("--out") + 1] = str(tmp_path / "after.csv")
    assert main(args) == 0
    assert "(1 embedded" in capsys.readouterr().err
    assert _labels(tmp_path / "after.csv")[str(target)] == "blues"
    assert _labels(tmp_path / "before.csv")[str(target)] == "reds"


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_under_the_cache(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cache_rows, "append_rows", _no_space)
    warnings = _run(data, tmp_path / "cache", tmp_path / "out.csv", capsys)
    assert warnings == [
        f"warning: cannot write the embedding cache {next((tmp_path / 'cache/embeddings').iterdir())}"
        " (No space left on device); continuing without caching new embeddings"
    ]


class _FullDisk(sqlite3.Connection):
    """A connection whose inserts fail as SQLite's do when the disk is full."""

    def executemany(self, sql, *args):
        if sql.startswith("INSERT"):
            raise sqlite3.OperationalError("database or disk is full")
        return super().executemany(sql, *args)


def test_full_disk_for_sqlite(data, tmp_path, capsys, monkeypatch):
    cache, folder = data.warm_cache(tmp_path)
    DAMAGE["truncate data to half"](folder)

    def connect(self):
        return sqlite3.connect(self._index_path, isolation_level=None, factory=_FullDisk)

    monkeypatch.setattr(EmbeddingCache, "_connect", connect)
    warnings = _run(data, cache, tmp_path / "out.csv", capsys)
    assert len(warnings) == 2, warnings  # the short data file, then the full disk
    assert "database or disk is full" in warnings[1]


def test_unwritable_cache_folder(data, tmp_path, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    warnings = _run(data, blocker, tmp_path / "out.csv", capsys)
    assert len(warnings) == 1 and "continuing without it" in warnings[0]
    assert (tmp_path / "out.csv").exists()


def test_nan_embeddings_name_their_file_and_encoder(data, tmp_path, capsys, monkeypatch):
    from fewshot_gui.session import LabelingSession

    forward = LabelingSession._forward

    def poisoned(self, images):
        out = forward(self, images)
        if len(out) > 10:  # the images, not the examples
            out[2] = np.nan
        return out

    monkeypatch.setattr(LabelingSession, "_forward", poisoned)
    out = tmp_path / "out.csv"
    assert main(data.args(tmp_path / "cache", out)) == 0
    warnings = [w for w in capsys.readouterr().err.splitlines() if w.startswith("warning:")]
    assert len(warnings) == 1 and "conv4 gave NaN/inf embeddings for 1 images" in warnings[0]
    failed = {p: r["error"] for p, r in _rows(out).items() if r["error"]}
    assert len(failed) == 1 and "conv4 gave NaN/inf" in next(iter(failed.values()))
    monkeypatch.setattr(LabelingSession, "_forward", forward)
    assert _run(data, tmp_path / "cache", tmp_path / "again.csv", capsys) == []  # never cached


@pytest.mark.slow
def test_killed_runs_leave_a_cache_the_next_run_completes_correctly(data, tmp_path):
    """A few SIGKILLs at random moments (the benchmark does 50+): then one run to completion."""
    before = file_hashes(data.root / "images")
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "fewshot_gui", *data.args(cache, tmp_path / "k.csv", True)]
    rng = random.Random(12)
    for kill in range(3):
        data_file = list(cache.rglob("embeddings.f16"))
        size = data_file[0].stat().st_size if data_file else 0
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        while process.poll() is None and kill < 2:  # wait for its first write to the cache
            written = list(cache.rglob("embeddings.f16"))
            if written and written[0].exists() and written[0].stat().st_size > size:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3) if kill < 2 else rng.uniform(0.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr  # a kill leaves nothing to repair
    assert _labels(tmp_path / "k.csv") == _labels(data.clean_csv)
    assert file_hashes(data.root / "images") == before
