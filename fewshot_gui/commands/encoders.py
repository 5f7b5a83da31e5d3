"""``fewshot-gui encoders``: list the encoders and say which are usable right now."""

from __future__ import annotations

import argparse
import json
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON array instead")


def _input_size(spec: Any) -> str:
    p = spec.preprocessing
    return f"{p.crop}×{p.crop} {'RGB' if p.channels == 3 else 'grey'}"


def encoder_rows() -> list[dict[str, Any]]:
    """One dict per registered encoder (built-ins and plug-ins): name, embed_dim, input_size,
    weights_source, usable, reason (None when usable), default, description; a family encoder
    (``omniglot``, ``photos``) also has ``checkpoints`` (each shipped file's name and the methods
    whose meta-learned state it carries) and ``methods`` (all of them), and names its files (never
    their folder) in ``weights_source``."""
    from fewshot_gui.encoders.registry import (
        default_encoder_name,
        family_checkpoints,
        in_method_order,
        list_encoders,
    )

    default = default_encoder_name()
    rows = []
    for spec in list_encoders():
        reason = spec.check_available()
        row: dict[str, Any] = {
            "name": spec.name,
            "embed_dim": spec.embed_dim,
            "input_size": _input_size(spec),
            "weights_source": spec.weights_source,
            "usable": reason is None,
            "reason": reason,
            "default": spec.name == default,
            "description": spec.description,
        }
        if spec.family:
            files = family_checkpoints(spec.name)
            row["checkpoints"] = [{"file": path.name, "methods": m} for path, m in files]
            row["methods"] = in_method_order(m for _, methods in files for m in methods)
            if files:
                row["weights_source"] = (
                    f"meta-trained, shipped: {_files(spec.name, row['checkpoints'])}"
                )
        rows.append(row)
    return rows


def _files(name: str, checkpoints: list[dict[str, Any]]) -> str:
    """The shipped files, those holding one method each as ``<name>-<method>.pt (N files)``."""
    one_each = [
        c
        for c in checkpoints
        if len(c["methods"]) == 1 and c["file"] == f"{name}-{c['methods'][0]}.pt"
    ]
    files = [c["file"] for c in checkpoints if c not in one_each]
    if one_each:
        count = f" ({len(one_each)} files)" if len(one_each) > 1 else ""
        files.append(f"{name}-<method>.pt{count}")
    return ", ".join(files)


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("name", "embedding", "input", "weights", "status")
    lines = []
    for row in rows:
        status = "usable" if row["usable"] else f"not usable: {row['reason']}"
        if row.get("methods"):
            status += f" — meta-learned: {', '.join(row['methods'])}"
        name = row["name"] + (" (default)" if row["default"] else "")
        lines.append(
            (name, str(row["embed_dim"]), row["input_size"], row["weights_source"], status)
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header[:-1])]
    out = []
    for cells in (header, *lines):
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        out.append("  ".join([*padded, cells[-1]]).rstrip())
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    rows = encoder_rows()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(_table(rows))
    return 0
