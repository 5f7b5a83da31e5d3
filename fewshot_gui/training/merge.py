"""Merge the adapter states of several checkpoints that share one encoder into a single file.

``python -m fewshot_gui.training.merge OUT BASE OTHER… [--half]``: the encoder and metadata come from
BASE; every checkpoint's adapter state is stored under ``"<method>."`` key prefixes with adapter
method ``"multi"``, so one file (e.g. the shipped ``photos`` encoder) serves every family: the
registry hands each method its own prefixed part.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fewshot_gui.core.errors import CheckpointError, FewShotError
from fewshot_gui.encoders.checkpoint import load_checkpoint, save_with_adapter

MULTI = "multi"


def split_multi_state(state: dict[str, Any], method: str) -> dict[str, Any]:
    """The part of a ``"multi"`` adapter state that belongs to ``method`` (prefix removed)."""
    prefix = f"{method}."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def merge_checkpoints(
    out: str | Path, base: str | Path, others: Sequence[str | Path], half: bool = True
) -> Path:
    """Write ``out``: ``base``'s encoder with the adapter states of ``base`` and ``others``.

    Raises CheckpointError when another checkpoint's encoder differs from the base's (the states
    were meta-trained on that exact encoder, so they only make sense with it).
    """
    first = load_checkpoint(base)
    state: dict[str, Any] = {}
    adapters: dict[str, Any] = {}
    for path in [base, *others]:
        ckpt = first if path == base else load_checkpoint(path)
        for name, tensor in first["encoder_state"].items():
            other = ckpt["encoder_state"].get(name)
            if other is None or not torch.allclose(other.float(), tensor.float(), atol=1e-3):
                raise CheckpointError(f"{path}: its encoder differs from {base}'s ({name})")
        method = ckpt["adapter"]["method"] or "metric"
        state.update({f"{method}.{k}": v for k, v in ckpt["adapter"]["state"].items()})
        meta = ckpt["metadata"]
        adapters[method] = {
            k: meta.get(k)
            for k in (
                "command",
                "val_accuracy",
                "val_ci95",
                "episodes",
                "way",
                "shot",
                "wall_s",
                "device",
            )
        }
    metadata = dict(
        first["metadata"], adapters=adapters, merged_from=[str(p) for p in [base, *others]]
    )
    return save_with_adapter(out, first, MULTI, state, metadata, half)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fewshot_gui.training.merge")
    parser.add_argument("out")
    parser.add_argument("base")
    parser.add_argument("others", nargs="*")
    parser.add_argument("--half", action="store_true", help="store floating tensors as float16")
    args = parser.parse_args(argv)
    existing = [p for p in args.others if Path(p).is_file()]
    for missing in sorted(set(args.others) - set(existing)):
        print(f"skipping {missing}: not found", file=sys.stderr)
    try:
        path = merge_checkpoints(args.out, args.base, existing, half=args.half)
    except FewShotError as error:
        print(f"merge: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
