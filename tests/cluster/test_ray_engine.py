"""``label --engine ray`` on one local Ray instance shared by the module (skipped without Ray).

One sequence of runs serves every test: the local engine; a ray driver killed (SIGKILL) right after
its first shard; the same command again, which resumes. Then: every file has exactly one row, the
labels, probabilities and failures equal the local engine's, a bad file has its reason, and a
session built from the stored embeddings re-labels as the run did.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imagefactory import make_image

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

from fewshot_gui.cli import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]

KILL_AFTER_FIRST_SHARD = r"""
import os, sys, time
from fewshot_gui.cluster import shards
marker = sys.argv[1]
flush = shards.ShardWriter.flush
def flush_then_wait(self):
    before = self.written
    flush(self)
    if self.written > before and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(600)  # the test kills the driver here, halfway through the run
shards.ShardWriter.flush = flush_then_wait
from fewshot_gui.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ray_address):
    root = tmp_path_factory.mktemp("ray")
    support, images = root / "support", root / "images"
    for name, color in {"reds": (220, 30, 30), "blues": (30, 40, 220)}.items():
        for i in range(2):
            make_image(support / name / f"ex{i}.jpg", color=color)
    rng = np.random.default_rng(0)
    for i in range(24):
        shade = int(rng.integers(150, 250))
        color = (shade, 40, 60) if i % 2 else (50, 60, shade)
        make_image(images / f"part{i % 3}" / f"img{i:02d}.jpg", size=(40 + i, 48), color=color)
    (images / "not_an_image.jpg").write_text("hello")
    (images / "empty.png").write_bytes(b"")
    (images / "notes.txt").write_text("not an image")
    common = ["--encoder", "conv4", "--device", "cpu", "--cache-dir", str(root / "cache")]
    local = root / "local.csv"
    assert main(["label", str(support), str(images), "--out", str(local), *common]) == 0
    out = root / "result"
    ray_args = [
        "label", str(support), str(images), "--engine", "ray", "--address", ray_address,
        "--out", str(out), "--embeddings", "--shard-rows", "4", "--batch-size", "4", *common,
    ]  # fmt: skip
    marker = root / "first-shard-written"
    driver = subprocess.Popen(
        [sys.executable, "-c", KILL_AFTER_FIRST_SHARD, str(marker), *ray_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while not marker.exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), driver.communicate(timeout=5)[1].decode()[-2000:]
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    killed = _shard_paths(out)
    assert main([*ray_args, "--csv"]) == 0
    return {"local": local, "out": out, "killed": killed, "images": images}


def _shard_paths(out: Path) -> list[str]:
    shards = sorted((out / "shards").glob("part-*.parquet"))
    return [p for s in shards for p in pq.read_table(s, columns=["path"]).column(0).to_pylist()]


def test_killed_run_resumes_with_every_file_once(runs):
    found = _shard_paths(runs["out"])
    assert 0 < len(runs["killed"]) < len(found)  # the kill came halfway
    assert len(found) == len(set(found)) == len(_rows(runs["local"]))
    assert not [n for n in os.listdir(runs["out"] / "shards") if n.endswith(".tmp")]


def test_labels_and_failures_equal_the_local_engine(runs):
    local, on_ray = _rows(runs["local"]), _rows(runs["out"] / "labels.csv")
    assert local == on_ray
    assert sum(1 for r in local.values() if r["error"]) == 3
    with open(runs["local"], encoding="utf-8") as a, open(runs["out"] / "labels.csv") as b:
        assert a.read() == b.read()


def test_a_bad_file_gets_its_reason(runs):
    rows = _rows(runs["out"] / "labels.csv")
    images = runs["images"]
    assert rows[str(images / "not_an_image.jpg")]["error"].startswith("not an image file")
    assert rows[str(images / "empty.png")]["error"] == "empty file"
    assert rows[str(images / "notes.txt")]["error"].startswith("not an image format")
    assert rows[str(images / "empty.png")]["label"] == ""


def test_a_session_from_the_stored_embeddings_relabels_like_the_run(runs):
    from fewshot_gui.cluster.result import LabelingResult
    from fewshot_gui.cluster.stored import StoredSession

    result = LabelingResult.open(runs["out"])
    session = StoredSession(result)
    ok = ~result.failed_mask()
    before = session.predictions()
    assert before.labels == list(result.labels[ok])
    np.testing.assert_allclose(before.probabilities, result.probabilities[ok], atol=1e-6)
    # a correction: the most confident image becomes the one example of a new class
    target = result.paths[ok][int(np.argmax(result.confidences[ok]))]
    after = session.add_example(target, "purples")
    assert "purples" in after.classes and after.labels[after.paths.index(target)] == "purples"
