"""A labeling run's output folder: Parquet shards written atomically, and what the run was.

Layout of ``OUT/``::

    run.json              what the run is (classes, encoder, method, support set, fingerprint)
    support.npz           the support set's embeddings (S, D) float32 and class names
    adapter_state.pt      the encoder checkpoint's meta-learned adapter state (when it has one)
    shards/part-*.parquet one row per image: path, label, confidence, unknown_score, error,
                          probabilities (C float32, run.json's class order)[, embedding (D float16)]
    labels.csv            the familiar labels CSV, when asked for (``--csv``)

Every file goes through :mod:`fewshot_gui.core.atomic` (temp name, fsync, rename), so a shard
exists completely or not at all. The paths already done are read back from the shards themselves
(no separate manifest to disagree with them): a re-run with the same ``OUT`` skips them. No Ray
and no torch here (torch only to write the adapter state, given as tensors by the caller).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fewshot_gui.core.atomic import TEMP_SUFFIX, atomic_open, atomic_write_text
from fewshot_gui.core.errors import UsageError

FORMAT = "fewshot-gui-labeling-result"
VERSION = 1
SHARDS = "shards"
RUN_FILE = "run.json"
SUPPORT_FILE = "support.npz"
ADAPTER_FILE = "adapter_state.pt"
CSV_FILE = "labels.csv"
UNKNOWN_SCORE_NOTE = (
    "the labeling session's open-set score (fewshot_gui/adapters/open_set.py); NaN for failed files"
)


@dataclass
class RunInfo:
    """What a run is; stored as ``run.json``. ``fingerprint`` identifies everything that decides
    its results (examples and their files, encoder, method, options): a resumed run must match."""

    classes: list[str]
    encoder: str
    encoder_id: str
    method: str
    method_description: str
    embed_dim: int
    embeddings: bool
    fingerprint: str
    images: str = ""
    encoder_note: str = ""
    unknown_threshold: float | None = None
    adapter_options: dict[str, Any] = field(default_factory=dict)
    support: list[tuple[str, str]] = field(default_factory=list)
    unknown_score: str = UNKNOWN_SCORE_NOTE
    refined: bool = False  # a whole-folder second pass over the embeddings (none exists yet)
    prior_fits: bool = False  # the domain gate found the examples in its tuning domain
    transductive: bool = True  # prototypes refined on the folder (the gate may have turned it off)
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> RunInfo:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError("not a labeling result")
            if int(data.get("version", 0)) > VERSION:
                raise ValueError(f"written by a newer fewshot-gui (format {data['version']})")
            data["support"] = [tuple(pair) for pair in data.get("support", [])]
            known = set(cls.__dataclass_fields__)
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError, AttributeError) as error:
            raise UsageError(f"{where} is not a usable labeling result ({error})") from None


def schema(classes: Sequence[str], embed_dim: int | None) -> pa.Schema:
    """The shards' schema (``embed_dim``: None when embeddings are not stored)."""
    fields = [
        pa.field("path", pa.string()),
        pa.field("label", pa.string()),
        pa.field("confidence", pa.float32()),
        pa.field("unknown_score", pa.float32()),
        pa.field("error", pa.string()),
        pa.field("probabilities", pa.list_(pa.float32(), len(classes))),
    ]
    if embed_dim is not None:
        fields.append(pa.field("embedding", pa.list_(pa.float16(), embed_dim)))
    meta = {b"fewshot-gui": json.dumps({"classes": list(classes)}).encode()}
    return pa.schema(fields, metadata=meta)


def rows_table(columns: dict[str, Any], classes: Sequence[str], embed_dim: int | None) -> pa.Table:
    """A shard table from numpy columns: ``path``/``label``/``error`` (n,) str, ``confidence`` and
    ``unknown_score`` (n,) float, ``probabilities`` (n, C) float, ``embedding`` (n, D) (optional)."""
    target = schema(classes, embed_dim)
    n = len(columns["path"])
    arrays: list[pa.Array] = [
        pa.array([str(p) for p in columns["path"]], pa.string()),
        pa.array([str(v) for v in columns["label"]], pa.string()),
        pa.array(np.asarray(columns["confidence"], np.float32)),
        pa.array(np.asarray(columns["unknown_score"], np.float32)),
        pa.array([str(v) for v in columns["error"]], pa.string()),
        _fixed_list(np.asarray(columns["probabilities"], np.float32).reshape(n, len(classes))),
    ]
    if embed_dim is not None:
        embedding = np.asarray(columns["embedding"], np.float16).reshape(n, embed_dim)
        arrays.append(_fixed_list(embedding))
    return pa.Table.from_arrays(arrays, schema=target)


def _fixed_list(matrix: np.ndarray) -> pa.FixedSizeListArray:
    values = pa.array(np.ascontiguousarray(matrix).ravel())
    return pa.FixedSizeListArray.from_arrays(values, matrix.shape[1])


def failure_rows(
    paths: Sequence[str], reasons: Sequence[str], classes: Sequence[str], embed_dim: int | None
) -> pa.Table:
    """Rows for files that could not be labeled (no label, NaN numbers, the reason)."""
    n = len(paths)
    columns = {
        "path": paths,
        "label": [""] * n,
        "confidence": np.full(n, np.nan),
        "unknown_score": np.full(n, np.nan),
        "error": reasons,
        "probabilities": np.full((n, len(classes)), np.nan),
        "embedding": np.full((n, embed_dim or 0), np.nan),
    }
    return rows_table(columns, classes, embed_dim)


class ResultFolder:
    """Reads and writes the files of one output folder (see the module's docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.shards = self.root / SHARDS

    def info(self) -> RunInfo | None:
        """The folder's :class:`RunInfo`, None when it has none yet."""
        path = self.root / RUN_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
        return RunInfo.from_json(text, self.root)

    def begin(self, info: RunInfo, support: np.ndarray, adapter_state: Any) -> bool:
        """Start or resume a run: True when resuming. Raises UsageError when the folder holds a
        run with other examples or settings (its results would be mixed with these)."""
        old = self.info()
        if old is not None and old.fingerprint != info.fingerprint:
            raise UsageError(
                f"--out {self.root} holds a run with other examples or settings "
                f"({old.encoder} + {old.method}, {len(old.support)} examples); "
                "choose another --out to start a new run"
            )
        self.shards.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()
        with atomic_open(self.root / SUPPORT_FILE, "wb") as handle:
            classes = np.array([c for _, c in info.support], dtype=np.str_)
            np.savez(handle, embeddings=np.asarray(support, np.float32), classes=classes)
        if adapter_state is not None:
            import torch

            with atomic_open(self.root / ADAPTER_FILE, "wb") as handle:
                torch.save(adapter_state, handle)
        atomic_write_text(self.root / RUN_FILE, info.to_json())
        return old is not None

    def _remove_stale_temps(self) -> None:
        """Temp files of shards a killed run was writing (each shard has its own name, so
        :func:`~fewshot_gui.core.atomic.atomic_open` would never clean them)."""
        for entry in os.scandir(self.shards):
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def shard_files(self) -> list[Path]:
        """The complete shards, oldest first (by name: each run's names sort after the last's)."""
        if not self.shards.is_dir():
            return []
        return sorted(p for p in self.shards.glob("part-*.parquet") if not p.name.startswith("."))

    def done_paths(self, warn: list[str] | None = None) -> pa.Array:
        """Every path that has a row in a shard (labeled or failed). A shard that cannot be read
        is renamed ``*.damaged`` (its files are labeled again) and named in ``warn``."""
        parts = []
        for shard in self.shard_files():
            try:
                parts.append(pq.read_table(shard, columns=["path"]).column("path"))
            except Exception as error:
                with contextlib.suppress(OSError):
                    shard.rename(shard.with_name(shard.name + ".damaged"))
                if warn is not None:
                    warn.append(f"{shard.name} could not be read ({error}); its files run again")
        if not parts:
            return pa.array([], pa.string())
        return pa.chunked_array(parts, pa.string()).combine_chunks()

    def not_done(self, paths: Sequence[str], done: pa.Array) -> list[str]:
        """``paths`` without those in ``done``, order kept."""
        if not len(done) or not paths:
            return list(paths)
        array = pa.array(paths, pa.string())
        keep = pc.invert(pc.is_in(array, value_set=done))
        return array.filter(keep).to_pylist()


class ShardWriter:
    """Collects result rows and writes them as shards of about ``rows`` rows, also every
    ``seconds`` (so an interrupted run loses at most that much work)."""

    def __init__(self, folder: ResultFolder, rows: int = 100_000, seconds: float = 60.0) -> None:
        self.folder, self.rows, self.seconds = folder, rows, seconds
        self._stamp = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._count = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._last = time.monotonic()
        self.written = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self._pending.append(table)
            self._pending_rows += table.num_rows
        if self._pending_rows >= self.rows or time.monotonic() - self._last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        """Write the rows collected so far as one shard (atomically)."""
        self._last = time.monotonic()
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._count += 1
        target = self.folder.shards / f"part-{self._stamp}-{self._count:05d}.parquet"
        with atomic_open(target, "wb", clean=False) as handle:
            pq.write_table(table, handle)
        self.written += table.num_rows
        self._pending, self._pending_rows = [], 0
