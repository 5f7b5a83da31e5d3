"""Command-line front: ``fewshot-gui [COMMAND] …``.

Each subcommand lives in ``fewshot_gui/commands/<name>.py`` with ``configure(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so ``fewshot-gui`` (the
desktop app) starts without importing torch first.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fewshot_gui import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "gui": ("fewshot_gui.commands.gui", "open the desktop app (the default)"),
    "label": ("fewshot_gui.commands.label", "label a folder from a few examples per class"),
    "demo": ("fewshot_gui.commands.demo", "label the built-in demo images headlessly"),
    "encoders": ("fewshot_gui.commands.encoders", "list encoders and whether they are usable now"),
    "meta-train": ("fewshot_gui.commands.meta_train", "meta-train an encoder episodically"),
    "evaluate": ("fewshot_gui.commands.evaluate", "N-way K-shot accuracy with a 95% interval"),
    "bench": ("fewshot_gui.commands.bench", "measure decode, model and end-to-end throughput"),
    "export": ("fewshot_gui.commands.export", "sort labeled images into one folder per class"),
    "undo-export": ("fewshot_gui.commands.undo_export", "undo the newest export into a folder"),
    "self-test": (
        "fewshot_gui.commands.self_test",
        "build the app offscreen and run one adaptation",
    ),
}


def _module(name: str):
    return importlib.import_module(COMMANDS[name][0])


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fewshot-gui",
        description="Sort images with a few examples per class. Without a command: open the app.",
    )
    parser.add_argument("--version", action="version", version=f"fewshot-gui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        # argparse %-formats help strings (not plain descriptions): "95% interval" needs "%%"
        sub_parser = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        if name == wanted:  # configure only the command being run: keeps start-up light
            _module(name).configure(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["gui", *argv]  # `fewshot-gui`, `fewshot-gui --demo`, `fewshot-gui project.fewshot`
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from fewshot_gui.core.errors import FewShotError

    try:
        return int(_module(args.command).run(args) or 0)
    except FewShotError as error:
        print(f"fewshot-gui: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fewshot-gui: interrupted", file=sys.stderr)
        return 130
