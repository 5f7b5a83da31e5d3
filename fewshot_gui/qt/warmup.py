"""Loading the engine in a background thread without freezing the window.

The worker thread imports torch and builds a model while the GUI thread keeps painting, but three
things made the GUI thread wait for Python's global interpreter lock (GIL) for 0.2–0.6 s at a time:

* the garbage collector: a full collection walks every tracked object, and importing torch, timm
  and their friends creates hundreds of thousands (0.2–0.5 s per collection on a laptop CPU);
* loading a large C extension: ``dlopen`` of ``libtorch_cpu.so`` and ``libtorch_cuda.so`` (about
  0.6 s) runs with the GIL held when ``import`` does it;
* CPU time: the worker's threads (model, decoders) kept both cores busy at the GUI's priority.

:func:`gc_paused` turns the collector off while modules are imported or a model is built, then
freezes what survived (modules, classes, the model: they live as long as the session), so later
collections skip it. :func:`preload_native_libraries` maps the largest libraries first through a
ctypes call of ``dlopen``, which releases the GIL; the later ``import`` finds them loaded. The
dynamic loader has one lock, though: another thread importing a C extension meanwhile would wait
for it *holding* the GIL, so other background imports of native code go through
:func:`import_quietly`, which takes turns with the preload. :func:`lower_thread_priority` makes
the calling thread (and the threads it starts) yield the CPU to the GUI thread. None of this
imports torch; each step is best effort and never raises (but :func:`import_quietly`'s import).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import glob
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

NO_PRELOAD_ENV = "FEWSHOT_GUI_NO_PRELOAD"
"""Set to 1 to skip :func:`preload_native_libraries` (let ``import`` load the libraries)."""

_lock = threading.Lock()
_loading = threading.Lock()  # held while a background thread loads native libraries
_paused = 0  # blocks inside gc_paused, over all threads: the collector is global
_enabled_before = True


@contextlib.contextmanager
def gc_paused(freeze: bool = True) -> Iterator[None]:
    """No garbage collection inside the block; afterwards (``freeze``) move every object that
    exists to the permanent generation, which collections no longer walk.

    Objects frozen this way are still freed by reference counting; only reference cycles among
    them are not collected. Nested and concurrent use (several threads) is counted.
    """
    global _paused, _enabled_before
    with _lock:
        if _paused == 0:
            _enabled_before = gc.isenabled()
        _paused += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if freeze:
                gc.freeze()
            if _paused == 0 and _enabled_before:
                gc.enable()


def _native_libraries() -> list[tuple[str, int]]:
    """``(path, dlopen mode)`` of the libraries worth loading early, in the order torch loads them.

    ``libtorch_global_deps`` first and global, as ``import torch`` does; ``libtorch_cpu`` (its CUDA
    dependencies come from its RPATH, the wheel's own copies); ``libtorch_cuda`` only without
    ``LD_LIBRARY_PATH``, which could otherwise put a different cuBLAS before the wheel's (torch
    orders those loads itself); triton's library (loaded when torch compiles a model).
    """
    found: list[tuple[str, int]] = []
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.submodule_search_locations:
        lib = os.path.join(next(iter(spec.submodule_search_locations)), "lib")
        names = ["libtorch_global_deps.so", "libtorch_cpu.so"]
        if not os.environ.get("LD_LIBRARY_PATH"):
            names.append("libtorch_cuda.so")
        for name in names:
            path = os.path.join(lib, name)
            if os.path.isfile(path):
                mode = os.RTLD_NOW | (os.RTLD_GLOBAL if "global" in name else os.RTLD_LOCAL)
                found.append((path, mode))
    spec = importlib.util.find_spec("triton")
    if spec is not None and spec.submodule_search_locations:
        root = next(iter(spec.submodule_search_locations))
        found += [
            (p, os.RTLD_NOW | os.RTLD_LOCAL)
            for p in sorted(glob.glob(os.path.join(root, "_C", "libtriton*.so")))
        ]
    return found


def import_quietly(name: str) -> ModuleType:
    """Import module ``name`` in a background thread: after any library preload in progress
    (waiting without the GIL), with the collector paused."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    with _loading, gc_paused():
        return importlib.import_module(name)


def preload_native_libraries() -> int:
    """Load torch's (and triton's) big shared libraries without holding the GIL (Linux only).

    Returns how many were loaded. The handles are kept open for the life of the process, as
    ``import torch`` keeps them.
    """
    if not sys.platform.startswith("linux") or os.environ.get(NO_PRELOAD_ENV):
        return 0
    try:
        libc = ctypes.CDLL(None)  # a CDLL call releases the GIL while the function runs
        dlopen = libc.dlopen
    except (OSError, AttributeError):
        return 0
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    loaded = 0
    with _loading:
        for path, mode in _native_libraries():
            if dlopen(os.fsencode(path), mode):
                loaded += 1
            else:  # a library that does not load here: leave it to ``import``, which says why
                break
    return loaded


def lower_thread_priority(niceness: int = 5) -> bool:
    """Lower the calling thread's CPU priority (Linux: per-thread nice value, inherited by the
    threads it starts afterwards); True when done. The GUI thread keeps the normal priority."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + niceness))
    except (OSError, AttributeError):
        return False
    return True
