"""``fewshot-gui label SUPPORT IMAGES --engine ray``: the driver of a cluster run.

1. Inputs and ``--out`` are checked first (as locally: before the model loads).
2. The support set is embedded and the adapter fitted once, here, by the same
   :class:`~fewshot_gui.session.LabelingSession` as locally (cache, domain gate and ``auto``
   included); the fitted adapter goes to the object store once (``ray.put``).
3. Ray Data: the paths not done yet → :func:`~fewshot_gui.cluster.worker.decode_batch` in tasks →
   :class:`~fewshot_gui.cluster.worker.LabelActor` on an actor pool
   (``compute=ActorPoolStrategy``; one GPU per actor where the cluster has GPUs) → result rows
   streamed back here and written as Parquet shards (:mod:`.shards`), with progress and ETA.
4. ``--csv``: the familiar labels CSV from the shards, by the local command's own writer.

A step that needs the whole folder (transductive refinement of the prototypes) belongs after 3, as a
second pass over the stored embeddings, never by collecting images here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fewshot_gui.cluster import require_ray
from fewshot_gui.cluster.refine import needs_folder, refine_result
from fewshot_gui.cluster.shards import CSV_FILE, ResultFolder, RunInfo, ShardWriter, failure_rows
from fewshot_gui.cluster.source import ImageSource, open_source
from fewshot_gui.commands._progress import ProgressLine, format_eta
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import Progress

DEFAULT_OUT = "labels-result"
DECODE_MEMORY = 256 * 2**20
"""Memory reserved per decoding task (a large photo decodes to ~100 MB before it is resized)."""


def check_output_folder(out: str, inputs: Mapping[str, str]) -> ResultFolder:
    """``--out`` as a result folder: new, empty, or a result written before; must be writable."""
    from fewshot_gui.commands._output import _probe_folder
    from fewshot_gui.core.atomic import TEMP_SUFFIX

    folder = ResultFolder(out)
    root = folder.root
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"--out {root} is a file; with --engine ray --out names a folder for the result"
        )
    for name, path in inputs.items():
        real = os.path.realpath(path) if "://" not in path else ""
        if real and os.path.realpath(root) == real:
            raise UsageError(f"--out {root} is the {name}; choose another folder")
    if root.is_dir() and folder.info() is None:
        leftovers = [p for p in root.iterdir() if not p.name.endswith(TEMP_SUFFIX)]
        if leftovers:
            raise UsageError(
                f"--out {root} is a folder that holds other files, not a labeling result; "
                "refusing to write into it (choose a new or empty folder)"
            )
    _probe_folder(root, root / "run.json")
    return folder


def fingerprint(session: Any, options: Mapping[str, Any], embeddings: bool) -> str:
    """What decides a run's results: examples (path, size, mtime), encoder, method, options."""
    from fewshot_gui.data.folder import record_for

    support = [(p, c, record_for(p).size, record_for(p).mtime_ns) for p, c in session.support]
    key = {
        "support": support,
        "encoder": session.encoder_id,
        "method": session.method,
        "options": sorted((k, repr(v)) for k, v in options.items()),
        "unknown_threshold": session.unknown_threshold,
        "embeddings": embeddings,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def _start_ray(address: str | None) -> bool:
    """Connect to (or start) Ray quietly; True when this call started it (and should stop it)."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the driver's core worker: quiet
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if not address and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False  # a local instance: no dashboard to serve
    try:
        ray.init(address=address or None, **kwargs)
    except ConnectionError as error:
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {error}") from None
    return True


def _actor_plan(args: argparse.Namespace) -> dict[str, Any]:
    """Actors, their resources and device: one GPU each where the cluster has GPUs, else CPU
    threads (half the CPUs run the model, half decode, as the local plan on the CPU)."""
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus and args.device != "cpu":
        actors = args.actors or gpus
        return {"actors": actors, "num_gpus": 1, "num_cpus": 1, "device": "cuda", "threads": 1,
                "batch": args.batch_size or 256, "cpus": cpus, "gpus": gpus}  # fmt: skip
    threads = args.actor_cpus or min(8, max(1, cpus // 2))
    actors = args.actors or max(1, (cpus // 2) // threads)
    return {"actors": actors, "num_gpus": 0, "num_cpus": threads, "device": "cpu",
            "threads": threads, "batch": args.batch_size or 32, "cpus": cpus, "gpus": 0}  # fmt: skip


def _dataset(paths: list[str], plan: Mapping[str, Any]) -> Any:
    """The paths as Ray blocks, a few per CPU (streaming needs many blocks to overlap stages)."""
    import pyarrow as pa
    import ray

    per_block = max(8, min(2048, math.ceil(len(paths) / (4 * plan["cpus"]))))
    tables = [
        pa.table({"path": pa.array(paths[i : i + per_block], pa.string())})
        for i in range(0, len(paths), per_block)
    ]
    return ray.data.from_arrow(tables), per_block


def _pipeline(paths: list[str], session: Any, args: argparse.Namespace, plan: dict) -> Any:
    import ray
    import ray.data

    from fewshot_gui.cluster.worker import ActorSpec, LabelActor, decode_batch

    level = os.environ.get("FEWSHOT_RAY_LOG", "ERROR")  # e.g. INFO: Ray Data's plan and stats
    for name in ("ray.data", "ray.data._internal.progress"):  # the latter: "bars disabled"
        logging.getLogger(name).setLevel(level)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver draws its own, with ETA
    context.print_on_execution_start = context.enable_auto_log_stats = level != "ERROR"
    context.issue_detectors_config.detectors = []  # its hints go to the log, not to the user
    ds, per_block = _dataset(paths, plan)
    preprocessing = session._loaded.spec.preprocessing.to_dict()
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs={"preprocessing": preprocessing, "max_pixels": session.max_pixels},
        batch_size=min(64, per_block),
        num_cpus=1,
        memory=DECODE_MEMORY,  # unlike the actors' resources: Ray runs decoding as its own tasks
    )
    spec = ActorSpec(
        encoder=session.encoder_name,  # after the domain gate: the encoder that labels
        method=session.method,
        device=plan["device"],
        threads=plan["threads"],
        max_pixels=session.max_pixels,
        unknown_threshold=session.unknown_threshold,
        embeddings=args.embeddings,
        batch=plan["batch"],
        prior_fits=bool(getattr(session, "_prior_fits", False)),
    )
    support = session.support
    fitted = (session._adapter, support, session._vectors([p for p, _ in support]))
    fitted_ref = ray.put(fitted)  # once; every actor fetches it once
    return ds.map_batches(
        LabelActor,
        fn_constructor_args=(spec, [fitted_ref]),
        compute=ray.data.ActorPoolStrategy(size=plan["actors"]),
        batch_size=plan["batch"],
        num_gpus=plan["num_gpus"],
        num_cpus=plan["num_cpus"],
    )


class _Meter:
    """Progress with rate and ETA: a bar on a terminal, else a line every ``every`` seconds."""

    def __init__(self, total: int, quiet: bool, every: float = 30.0) -> None:
        self.total, self.quiet, self.every = total, quiet, every
        self.bar = ProgressLine()
        self.bar.enabled = self.bar.enabled and not quiet
        self.start = self._last = time.perf_counter()
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.bar.update(Progress(self.done, self.total, "labeling", rate, eta))
        if (
            not self.quiet
            and not self.bar.enabled
            and time.perf_counter() - self._last > self.every
        ):
            self._last = time.perf_counter()
            print(
                f"labeling: {self.done}/{self.total} {rate:.1f} img/s ETA {format_eta(eta)}",
                file=sys.stderr,
            )

    def close(self) -> None:
        self.bar.close()


def _skipped_rows(source: ImageSource, folder: ResultFolder, done: Any, info: RunInfo) -> Any:
    """Rows for paths found but not used (not yet in a shard; our own output folder excluded)."""
    mine = str(folder.root) + os.sep
    skipped = [f for f in source.skipped if not f.path.startswith(mine)]
    todo = set(folder.not_done([f.path for f in skipped], done))
    skipped = [f for f in skipped if f.path in todo]
    dim = info.embed_dim if info.embeddings else None
    return failure_rows([f.path for f in skipped], [f.reason for f in skipped], info.classes, dim)


def run(args: argparse.Namespace) -> int:
    """The ray engine's ``label``; exit codes as the local command (0 done, 2 unusable input)."""
    from fewshot_gui.commands.label import _print_notes, session_for, support_examples

    require_ray()
    examples, support_notes = support_examples(args.support_dir)
    source = open_source(args.images_dir)
    inputs = {"images folder": args.images_dir, "support folder": args.support_dir}
    folder = check_output_folder(args.out or DEFAULT_OUT, inputs)
    _print_notes(support_notes)

    session = session_for(args)
    options = session.adapter_options
    start = time.perf_counter()
    bar = ProgressLine()
    bar.enabled = bar.enabled and not args.quiet
    for item in session.set_support(examples):
        bar.update(item)
    bar.close()
    folder_pass = needs_folder(session)
    if folder_pass and not args.embeddings:
        args.embeddings = True  # final labels: a second pass over the whole folder
        if not args.quiet:
            print(
                "storing embeddings: final labels use the whole folder (a second pass over them)",
                file=sys.stderr,
            )
    support_paths = [p for p, _ in session.support]
    info = RunInfo(
        classes=session.classes,
        encoder=session.encoder_name,
        encoder_id=session.encoder_id,
        method=session.method,
        method_description=session.method_description,
        embed_dim=session.embed_dim,
        embeddings=bool(args.embeddings),
        fingerprint=fingerprint(session, options, bool(args.embeddings)),
        images=args.images_dir,
        encoder_note=session.encoder_note,
        unknown_threshold=args.unknown_threshold,
        adapter_options=options,
        support=session.support,
        prior_fits=bool(getattr(session, "_prior_fits", False)),
        transductive=bool(getattr(session, "transductive", True)),
    )
    state = session._loaded.adapter_state
    resumed = folder.begin(info, session._vectors(support_paths), state)
    warnings: list[str] = []
    done = folder.done_paths(warnings)
    todo = folder.not_done(source.paths, done)
    writer = ShardWriter(folder, rows=args.shard_rows)
    writer.add(_skipped_rows(source, folder, done, info))
    if resumed and not args.quiet:
        print(f"resuming {folder.root}: {len(done)} file(s) done before", file=sys.stderr)
    started_ray = _start_ray(args.address) if todo else False
    meter = _Meter(len(todo), args.quiet)
    plan: dict[str, Any] = {}
    dim = info.embed_dim if info.embeddings else None
    try:
        if todo:
            plan = _actor_plan(args)
            from fewshot_gui.cluster.shards import rows_table

            for batch in _pipeline(todo, session, args, plan).iter_batches(
                batch_size=None, batch_format="numpy"
            ):
                writer.add(rows_table(batch, info.classes, dim))
                meter.add(len(batch["path"]))
    except KeyboardInterrupt:
        writer.flush()
        print(
            f"fewshot-gui: interrupted after {meter.done} of {len(todo)} images; "
            "the same command resumes",
            file=sys.stderr,
        )
        return 130
    finally:
        writer.flush()
        meter.close()
        if started_ray:
            import ray

            ray.shutdown()
    if folder_pass:
        refine_result(folder.root)
    for line in [*session.take_warnings(), *warnings]:
        print(f"warning: {line}", file=sys.stderr)
    if args.csv:
        write_result_csv(folder.root)
    if not args.quiet:
        _summary(folder, info, session, plan, len(todo), time.perf_counter() - start, args.csv)
    session.close()
    return 0


def write_result_csv(root: str | os.PathLike[str]) -> Path:
    """``root/labels.csv`` from the shards, by the local command's writer (rows sorted by path)."""
    from fewshot_gui.cluster.result import LabelingResult
    from fewshot_gui.commands.label import write_csv

    result = LabelingResult.open(root)
    predictions, failures = result.predictions(), result.failures()
    order = sorted([*predictions.paths, *(f.path for f in failures)])
    write_csv(result.root / CSV_FILE, predictions, failures, order)
    return result.root / CSV_FILE


def _summary(
    folder: ResultFolder,
    info: RunInfo,
    session: Any,
    plan: Mapping[str, Any],
    ran: int,
    elapsed: float,
    csv: bool,
) -> None:
    from fewshot_gui.cluster.result import LabelingResult

    result = LabelingResult.open(folder.root)
    failed = int(result.failed_mask().sum())
    where = (
        f"{plan['actors']} actor(s) on {'GPU' if plan['device'] == 'cuda' else 'CPU'}"
        if plan
        else "nothing left to run"
    )
    print(
        f"labeled {len(result) - failed} of {len(result)} files ({ran} in this run, "
        f"{elapsed:.1f} s, {where}) with {info.encoder} + {session.method_description}; "
        f"{failed} failed or not used",
        file=sys.stderr,
    )
    counts = result.label_counts()
    if counts:
        print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    print(
        f"wrote {folder.root}" + (f" and {folder.root / CSV_FILE}" if csv else ""), file=sys.stderr
    )
