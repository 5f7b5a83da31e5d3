"""``fewshot-gui [--demo] [PROJECT.fewshot]``: open the desktop app.

Before Qt is asked for a window, check that one can be shown: a display (``DISPLAY`` or
``WAYLAND_DISPLAY``) and, for X11, the system libraries Qt's xcb plugin needs. Otherwise print one
plain line naming what is missing and the alternatives, instead of Qt's abort.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import sys

XCB_LIBRARIES = {  # soname → Debian / Ubuntu package
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
}
INSTALL_HINT = "sudo apt-get install " + " ".join(XCB_LIBRARIES.values())
ALTERNATIVES = (
    "without a display, `fewshot-gui demo` and `fewshot-gui self-test` still work "
    "(self-test uses Qt's offscreen platform)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", default=None, help="a .fewshot project to open")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the built-in demo project (drawn images, four classes)",
    )


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return ctypes.util.find_library(soname.split(".so")[0].removeprefix("lib")) is not None


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """A one-line reason the app cannot open a window here, or None when it can (probably)."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(("xcb", "wayland")):
        return None  # offscreen, vnc, cocoa, windows …: Qt knows what to do
    if sys.platform != "linux":
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return f"no display found (DISPLAY and WAYLAND_DISPLAY are not set); {ALTERNATIVES}"
    if env.get("WAYLAND_DISPLAY") and not platform.startswith("xcb"):
        return None
    missing = [pkg for so, pkg in XCB_LIBRARIES.items() if not _loadable(so)]
    if missing:
        return (
            f"Qt cannot open a window: system libraries are missing ({', '.join(missing)}); "
            f"install them with `sudo apt-get install {' '.join(missing)}`, {ALTERNATIVES}"
        )
    return None


def run(args: argparse.Namespace) -> int:
    problem = display_problem()
    if problem:
        print(f"fewshot-gui: {problem}", file=sys.stderr)
        return 2
    if args.project and not os.path.exists(args.project):
        print(f"fewshot-gui: no such project file: {args.project}", file=sys.stderr)
        return 2
    from fewshot_gui.app import run_app

    return run_app(project=args.project, demo=args.demo)
