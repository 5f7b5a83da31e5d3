"""``fewshot-gui undo-export DEST``: undo the newest export into DEST (``--all``: every one).

Works from DEST's journal alone, also after a crash. A file is put back or removed only when it
still holds exactly what the export wrote; anything changed since is left and listed as refused.
Exit 0 when the undo ran (refusals included), 1 when some files could not be undone (try again),
2 when DEST has no export journal.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", help="the folder an export wrote into")
    parser.add_argument(
        "--all", action="store_true", help="undo every export into DEST, newest first"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.commands.export import list_some
    from fewshot_gui.data.export import undo_export

    result = undo_export(args.dest, all_exports=args.all)
    print(result.summary())
    if not args.quiet:
        list_some("refused (left as they are)", result.refused)
        list_some("failed", result.failures)
    return 1 if result.failures else 0
