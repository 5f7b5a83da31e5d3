"""Resume trial: ``label --engine ray`` killed (SIGKILL) halfway, run again, every file once.

    python benchmarks/cluster_resume.py IMAGES SUPPORT_DIR [--out /tmp/resume-trial] [--at 0.5]

Starts the command, watches the shards it writes, kills the driver once ``--at`` of the files
have rows, runs the same command again, then counts every path's rows across the shards.
``--shard-rows`` is small so progress is visible at a fine grain.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq


def shard_paths(out: Path) -> list[str]:
    paths = []
    for shard in sorted((out / "shards").glob("part-*.parquet")):
        paths += pq.read_table(shard, columns=["path"]).column(0).to_pylist()
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images")
    parser.add_argument("support")
    parser.add_argument("--out", type=Path, default=Path("/tmp/fewshot-resume-trial"))
    parser.add_argument("--at", type=float, default=0.5)
    parser.add_argument("--shard-rows", type=int, default=32)
    parser.add_argument("--encoder", default=None)
    args = parser.parse_args()
    from fewshot_gui.cluster.source import open_source

    total = len(open_source(args.images).paths) + len(open_source(args.images).skipped)
    shutil.rmtree(args.out, ignore_errors=True)
    cmd = [sys.executable, "-m", "fewshot_gui", "label", args.support, args.images, "--engine",
           "ray", "--out", str(args.out), "--shard-rows", str(args.shard_rows), "--quiet"]  # fmt: skip
    cmd += ["--encoder", args.encoder] if args.encoder else []
    start = time.perf_counter()
    driver = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    done = 0
    while driver.poll() is None and done < args.at * total:
        time.sleep(0.5)
        done = len(shard_paths(args.out)) if (args.out / "shards").is_dir() else 0
    if driver.poll() is not None:
        sys.exit(f"the run ended before the kill: {driver.stderr.read().decode()[-2000:]}")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    killed_at = len(shard_paths(args.out))
    print(f"killed the driver after {time.perf_counter() - start:.0f} s: {killed_at} of {total} "
          f"files had rows")  # fmt: skip
    again = time.perf_counter()
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    rows = collections.Counter(shard_paths(args.out))
    print(f"re-run: exit {rerun.returncode} in {time.perf_counter() - again:.0f} s; files with rows "
          f"{len(rows)} of {total}; files with more than one row {sum(c > 1 for c in rows.values())}; "
          f"temp files left {len(list((args.out / 'shards').glob('.*.tmp')))}")  # fmt: skip


if __name__ == "__main__":
    main()
