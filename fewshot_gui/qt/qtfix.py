"""Work around a PySide6 reference-count bug that aborts the app on Python 3.10 and 3.11.

PySide6 6.12 returns ``None`` from every void method (``setText``, ``QPainter.save``, …) without
taking a new reference, which is harmless where None is immortal (Python 3.12+). On older Pythons
each call takes one reference from None; a repaint of the image grid takes a few hundred, and after
some minutes of use the interpreter stops with "Fatal Python error: none_dealloc". Importing the
Qt side of the package (``qt``, ``ui``, ``plots``, ``workers``) calls :func:`protect_none`, which detects
the leak and gives None a reference count that cannot run out.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject

RESERVE = 1 << 40
"""References added to None when void calls leak them (about a trillion calls' worth)."""


def void_calls_leak_none() -> bool:
    """True when a PySide6 void method call takes a reference from None."""
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(16):
        probe.setObjectName("")
    return sys.getrefcount(None) < before


def protect_none() -> bool:
    """Give None :data:`RESERVE` more references if void calls leak them; True when done."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # None is immortal there
    if hasattr(sys, "getobjects"):  # a Py_TRACE_REFS build: the count is not the first field
        return False
    if sys.getrefcount(None) > RESERVE // 2 or not void_calls_leak_none():
        return False
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt, the first field
    refcount.value += RESERVE
    return True


protect_none()
