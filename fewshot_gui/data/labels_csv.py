"""The labels file: the one writer and the one reader of the CSV (or JSON) of labels that
``fewshot-gui label`` and the app's export write and ``fewshot-gui export`` reads.

CSV columns: ``path, label, confidence, error`` (empty when the file was fine), then ``source``
(``model`` / ``user``) when the writer knows it, then one probability column per class, then
``unknown_score`` (always written; empty when not computed: how unlike every class the image is,
see :mod:`fewshot_gui.adapters.open_set`). Class names,
labels and reasons pass through :func:`~fewshot_gui.core.csvcells.safe_cell` (the reader unescapes);
paths are written as given (absolute, from the folder scan). A ``.json`` path gets a list of objects
with the same fields instead. Written atomically (``core/atomic.py``); file names that are not valid
UTF-8 round-trip as their original bytes (``surrogateescape``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from fewshot_gui.core.atomic import atomic_open, atomic_write_text
from fewshot_gui.core.csvcells import safe_cell, unescape_cell
from fewshot_gui.core.errors import UsageError

BASE_COLUMNS = ("path", "label", "confidence", "error")
SOURCE_COLUMN = "source"
UNKNOWN_COLUMN = "unknown_score"
SOURCES = ("model", "user")
_TEXT = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}


@dataclass(frozen=True)
class LabelRow:
    """One image's label. ``source`` is ``model`` or ``user``; ``error`` (non-empty) means the image
    could not be labeled and ``label``/``confidence`` are empty; ``probabilities`` follow the
    table's classes (empty when unknown); ``unknown_score`` in [0, 1] (None: not computed)."""

    path: str
    label: str
    confidence: float | None = 1.0
    source: str = "model"
    error: str = ""
    probabilities: tuple[float, ...] = ()
    unknown_score: float | None = None


@dataclass
class LabelsTable:
    """What :func:`read_labels` found: the probability columns' classes and the rows."""

    classes: list[str] = field(default_factory=list)
    rows: list[LabelRow] = field(default_factory=list)


def _number(value: float | None) -> str:
    return "" if value is None else f"{float(value):.6f}"


def write_labels(
    path: str | os.PathLike[str],
    rows: Iterable[LabelRow],
    classes: Sequence[str] = (),
    *,
    source: bool = False,
) -> Path:
    """Write ``rows`` to ``path`` (``.json`` → JSON, else CSV) atomically; returns the path.

    ``classes`` adds one probability column per class (``row.probabilities`` in that order; blank
    for rows with an error); ``source`` adds the ``source`` column.
    """
    target = Path(path).expanduser().absolute()
    if target.suffix.lower() == ".json":
        atomic_write_text(target, _json_text(rows, classes, source))
        return target
    with atomic_open(target, "w", **_TEXT) as handle:
        writer = csv.writer(handle)
        extra = [SOURCE_COLUMN] if source else []
        header = [*BASE_COLUMNS, *extra, *(safe_cell(c) for c in classes), UNKNOWN_COLUMN]
        writer.writerow(header)
        for r in rows:
            probs = [_number(p) for p in r.probabilities] or [""] * len(classes)
            cells = [r.path, safe_cell(r.label), _number(r.confidence), safe_cell(r.error)]
            unknown = _number(r.unknown_score)
            writer.writerow([*cells, *([r.source] if source else []), *probs, unknown])
    return target


def _json_text(rows: Iterable[LabelRow], classes: Sequence[str], source: bool) -> str:
    data = []
    for r in rows:
        item: dict[str, object] = {"path": r.path, "label": r.label}
        item["confidence"] = None if r.confidence is None else round(float(r.confidence), 6)
        if source:
            item["source"] = r.source
        if r.error:
            item["error"] = r.error
        if classes and r.probabilities:
            item["probabilities"] = dict(zip(classes, map(float, r.probabilities), strict=True))
        item[UNKNOWN_COLUMN] = None if r.unknown_score is None else round(r.unknown_score, 6)
        data.append(item)
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def read_labels(path: str | os.PathLike[str]) -> LabelsTable:
    """Read a labels CSV or JSON written by :func:`write_labels` (or by an earlier version).

    Relative paths are taken relative to the file's folder. Raises UsageError when the file is
    missing, unreadable or not a labels file.
    """
    source = Path(path).expanduser()
    try:
        with open(source, **_TEXT) as handle:
            text = handle.read()
    except OSError as error:
        raise UsageError(f"cannot read the labels file {source}: {error.strerror}") from None
    base = source.absolute().parent
    try:
        table = _read_json(text) if source.suffix.lower() == ".json" else _read_csv(text)
    except (csv.Error, ValueError, TypeError, KeyError, AttributeError) as error:
        raise UsageError(f"{source} is not a labels file ({error})") from None
    if table is None:
        raise UsageError(f"{source} is not a labels file: it needs 'path' and 'label' columns")
    table.rows = [
        r if not r.path or os.path.isabs(r.path) else _with_path(r, str(base / r.path))
        for r in table.rows
    ]
    return table


def _with_path(row: LabelRow, path: str) -> LabelRow:
    return replace(row, path=path)


def _float(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


def _read_csv(text: str) -> LabelsTable | None:
    lines = list(csv.reader(io.StringIO(text, newline="")))
    if not lines or lines[0][:2] != ["path", "label"]:
        return None
    header = lines[0]
    end = len(header) - 1 if len(header) > 2 and header[-1] == UNKNOWN_COLUMN else len(header)
    known = [c for c in BASE_COLUMNS if c in header]
    first_class = len(known)
    has_source = len(header) > first_class and header[first_class] == SOURCE_COLUMN
    body = [cells for cells in lines[1:] if cells]
    if has_source and all(
        len(c) <= first_class or c[first_class] in (*SOURCES, "") for c in body
    ):  # a class called "source" has numbers in its column, never model/user
        first_class += 1
    else:
        has_source = False
    col = {name: header.index(name) for name in known}
    classes = [unescape_cell(c) for c in header[first_class:end]]
    rows = []
    for cells in body:
        cells = cells + [""] * (len(header) - len(cells))
        probs = tuple(_float(c) for c in cells[first_class:end])
        rows.append(
            LabelRow(
                cells[col["path"]],
                unescape_cell(cells[col["label"]]),
                _float(cells[col["confidence"]]) if "confidence" in col else None,
                cells[first_class - 1] if has_source else "model",
                unescape_cell(cells[col["error"]]) if "error" in col else "",
                probs if None not in probs else (),  # type: ignore[arg-type]
                _float(cells[end]) if end < len(header) else None,
            )
        )
    return LabelsTable(classes, rows)


def _read_json(text: str) -> LabelsTable | None:
    data = json.loads(text)
    if not isinstance(data, list) or not all(
        isinstance(d, dict) and "path" in d and "label" in d for d in data
    ):
        return None
    classes: list[str] = []
    rows = []
    for d in data:
        probs = d.get("probabilities") or {}
        classes = classes or list(probs)
        conf = d.get("confidence")
        rows.append(
            LabelRow(
                str(d["path"]),
                str(d["label"] or ""),
                None if conf is None else float(conf),
                str(d.get("source", "model")),
                str(d.get("error", "")),
                tuple(float(probs[c]) for c in classes) if probs else (),
                None if d.get(UNKNOWN_COLUMN) is None else float(d[UNKNOWN_COLUMN]),
            )
        )
    return LabelsTable(classes, rows)
