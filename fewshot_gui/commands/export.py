"""``fewshot-gui export LABELS.csv DEST``: sort labeled images into one folder per class.

Reads the labels CSV written by ``fewshot-gui label`` (or the app's labels file) and copies, moves or
links each image into ``DEST/<label>/``, journalled so that ``fewshot-gui undo-export DEST`` reverses
it. Prints one summary line. Exit 0 when the export ran to the end (images that could not be exported
are listed), 1 when it stopped early (a full disk), 2 when the input is unusable.
"""

from __future__ import annotations

import argparse
import sys

MAX_LISTED = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "labels", help="labels CSV (or JSON) written by `fewshot-gui label` or the app"
    )
    parser.add_argument("dest", help="folder to sort into: one sub-folder per class")
    parser.add_argument(
        "--mode",
        choices=("copy", "move", "link"),
        default="copy",
        help="copy the images (default), move them, or make symbolic links to them",
    )
    parser.add_argument(
        "--unknown",
        choices=("folder", "skip"),
        default="folder",
        help="images labeled unknown: into DEST/_unknown (default) or not exported",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")


def list_some(title: str, items: list[tuple[str, str]]) -> None:
    """Print up to MAX_LISTED ``path: reason`` lines under ``title`` to stderr."""
    if not items:
        return
    print(f"{title}:", file=sys.stderr)
    for path, reason in items[:MAX_LISTED]:
        print(f"  {path}: {reason}", file=sys.stderr)
    if len(items) > MAX_LISTED:
        print(f"  … and {len(items) - MAX_LISTED} more", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.core.errors import UsageError
    from fewshot_gui.data.export import export_images
    from fewshot_gui.data.labels_csv import read_labels

    table = read_labels(args.labels)
    if not table.rows:
        raise UsageError(f"{args.labels} has no rows: nothing to export")
    result = export_images(table.rows, args.dest, args.mode, args.unknown)
    print(result.summary())
    if not args.quiet:
        list_some("not exported", result.failures)
        list_some(
            "label changed since an earlier export (left where they are)",
            [(path, f"exported earlier as {old}") for path, old in result.label_changed],
        )
    return 1 if result.stopped else 0
