"""Launch → visible main window, measured from outside the app.

Starts ``Xvfb`` on a free display (or uses ``$DISPLAY`` with ``--use-display``), launches the app
as a subprocess ``--runs`` times and measures the time from ``Popen`` to the X server reporting
the main window as mapped. The wait is event-driven (``MapNotify`` on the root window, read through
libX11 with ctypes), so the watcher costs no CPU while the app starts; ``--watch xdotool`` uses
``xdotool search --sync --onlyvisible`` instead (it polls, so expect its coarser figures). Each
run is killed shortly after its window shows. Prints every run (with the app's own
``FEWSHOT_GUI_TIMING`` line) and the median of the runs after the first (the first run, with the
least warm caches, is reported on its own).

    python benchmarks/gui_launch.py                       # console script, --demo, 5 runs
    python benchmarks/gui_launch.py --runs 9 --command "python -m fewshot_gui --demo"
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAP_NOTIFY = 19
SUBSTRUCTURE_NOTIFY_MASK = 1 << 19
TITLE = "fewshot-gui"


def default_command() -> list[str]:
    """The installed console script next to this interpreter (not a pyenv shim), with --demo."""
    script = Path(sys.executable).with_name("fewshot-gui")
    if script.exists():
        return [str(script), "--demo"]
    found = shutil.which("fewshot-gui")
    return [found, "--demo"] if found else [sys.executable, "-m", "fewshot_gui", "--demo"]


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """An Xvfb server on the first free display number from :91."""
    for number in range(91, 140):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        server = subprocess.Popen(
            ["Xvfb", f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return server, f":{number}"
            if server.poll() is not None:
                break
            time.sleep(0.05)
        server.kill()
    raise SystemExit("gui_launch: could not start Xvfb on a free display")


class MapWatcher:
    """Waits for a top-level window whose title contains ``title`` to be mapped (libX11)."""

    def __init__(self, display: str, title: str) -> None:
        name = ctypes.util.find_library("X11")
        if name is None:
            raise OSError("libX11 not found")
        x = self.x = ctypes.CDLL(name)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XSelectInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_long]
        x.XConnectionNumber.argtypes = [ctypes.c_void_p]
        x.XPending.argtypes = [ctypes.c_void_p]
        x.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        x.XFetchName.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_char_p),
        ]
        x.XFree.argtypes = [ctypes.c_void_p]
        x.XFlush.argtypes = [ctypes.c_void_p]
        self.display = x.XOpenDisplay(display.encode())
        if not self.display:
            raise OSError(f"cannot open display {display}")
        self.title = title.encode()
        x.XSelectInput(self.display, x.XDefaultRootWindow(self.display), SUBSTRUCTURE_NOTIFY_MASK)
        x.XFlush(self.display)
        self.fd = x.XConnectionNumber(self.display)
        self.event = (ctypes.c_long * 24)()  # an XEvent union is 24 longs

    def drain(self) -> None:
        while self.x.XPending(self.display):
            self.x.XNextEvent(self.display, self.event)

    def _title(self, window: int) -> bytes:
        name = ctypes.c_char_p()
        if not self.x.XFetchName(self.display, window, ctypes.byref(name)) or not name.value:
            return b""
        value = name.value
        self.x.XFree(name)
        return value

    def wait(self, deadline: float) -> float | None:
        """``perf_counter()`` when the window was mapped, or None at ``deadline``."""
        while True:
            while self.x.XPending(self.display):
                self.x.XNextEvent(self.display, self.event)
                now = time.perf_counter()
                # XMapEvent: int type; ulong serial; Bool send_event; Display*; Window event, window
                if self.event[0] & 0xFFFFFFFF == MAP_NOTIFY and self.title in self._title(
                    self.event[5]
                ):
                    return now
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            select.select([self.fd], [], [], min(left, 0.5))


def wait_xdotool(display: str, title: str, deadline: float) -> float | None:
    """``xdotool search --sync`` (polls the server; returns when the window is viewable)."""
    try:
        subprocess.run(
            ["xdotool", "search", "--sync", "--onlyvisible", "--name", title],
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=max(0.1, deadline - time.perf_counter()),
            check=True,
        )
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return None
    return time.perf_counter()


def stop(process: subprocess.Popen) -> None:
    """End the app (its process group) and wait for it."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def launch_once(
    command: list[str], display: str, env: dict[str, str], watch: str, timeout: float, grace: float
) -> tuple[float | None, str]:
    """Seconds from Popen to the mapped window (None: it did not show), and the app's stderr
    (``grace`` seconds after the window showed: the app's own timing line)."""
    watcher = MapWatcher(display, TITLE) if watch == "x11" else None
    if watcher is not None:
        watcher.drain()
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env={**env, "DISPLAY": display},
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        deadline = started + timeout
        shown = (
            watcher.wait(deadline)
            if watcher is not None
            else wait_xdotool(display, TITLE, deadline)
        )
        if shown is not None:
            time.sleep(grace)
        stop(process)
        err.seek(0)
        text = err.read().decode(errors="replace")
    return (None if shown is None else shown - started), text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs after the first")
    parser.add_argument("--command", default=None, help="the app command (default: console script)")
    parser.add_argument("--watch", choices=("x11", "xdotool"), default="x11")
    parser.add_argument("--use-display", action="store_true", help="use $DISPLAY, no own Xvfb")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument(
        "--grace", type=float, default=0.5, help="seconds the app runs on after it showed"
    )
    args = parser.parse_args()
    command = shlex.split(args.command) if args.command else default_command()
    server = None
    if args.use_display and os.environ.get("DISPLAY"):
        display = os.environ["DISPLAY"]
    else:
        server, display = start_xvfb()
    config = tempfile.TemporaryDirectory(prefix="gui-launch-")  # the user's settings stay untouched
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": config.name,
        "FEWSHOT_GUI_TIMING": "1",
        "QT_QPA_PLATFORM": "xcb",
    }
    print(f"command: {shlex.join(command)}  display {display}  watch {args.watch}")
    times: list[float] = []
    try:
        for run in range(args.runs + 1):
            took, stderr = launch_once(command, display, env, args.watch, args.timeout, args.grace)
            inside = next((ln for ln in stderr.splitlines() if "window visible" in ln), "")
            label = "first" if run == 0 else f"run {run}"
            if took is None:
                print(f"{label:>6}: no window within {args.timeout:.0f} s\n{stderr[-2000:]}")
                continue
            print(f"{label:>6}: {took:.3f} s to the mapped window   (app: {inside.strip() or '-'})")
            if run:
                times.append(took)
    finally:
        if server is not None:
            server.terminate()
            server.wait(5)
        config.cleanup()
    if times:
        print(
            f"median of {len(times)} runs: {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}); target ≤ 1.5 s"
        )


if __name__ == "__main__":
    main()
