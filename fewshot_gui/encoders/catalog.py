"""The one table of encoders: name → :class:`~fewshot_gui.encoders.spec.EncoderSpec`, filled from
the entry-point group ``fewshot_gui.encoders``.

Every encoder, built-in or plug-in, is one entry point ``<name> = "<module>:<object>"`` whose object
is an ``EncoderSpec`` or a function of no argument returning one. Functions are called when their
encoder is first needed, so :func:`encoder_names` imports no model library. The built-ins' entry
points are in this project's ``pyproject.toml`` and name the functions of
``fewshot_gui.encoders.builtin.BUILTINS``; that table is used directly for any built-in the package
metadata lacks (a source tree never installed, a frozen app). A plug-in that fails to load, gives
no ``EncoderSpec``, or takes a name already used gives one
:class:`~fewshot_gui.core.plugins.PluginWarning` and is left out: it never stops the program.

Order (every list, chooser and table): the built-ins in ``BUILTINS`` order, then plug-ins by name,
then encoders added with :func:`register_encoder`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from fewshot_gui.core.plugins import load_entry_points, warn
from fewshot_gui.encoders.spec import EncoderSpec

GROUP = "fewshot_gui.encoders"
BUILTIN_MODULE = "fewshot_gui.encoders.builtin"

Entry = EncoderSpec | Callable[[], EncoderSpec]

_entries: dict[str, Entry] = {}
_loaded = False
_lock = threading.RLock()


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an encoder (None: it can). Names are lowercase and never look like
    a checkpoint file, so that ``--encoder`` tells the two apart."""
    looks_like_a_file = any(c in name for c in "/\\") or name.endswith((".pt", ".pth"))
    if not name or name != name.strip().lower() or looks_like_a_file:
        return f"{name!r} is not an encoder name (lowercase, no / or \\, not ending in .pt)"
    return None


def _problem(name: str, obj: Any) -> str | None:
    if not (isinstance(obj, EncoderSpec) or callable(obj)):
        return f"{obj!r} is neither an EncoderSpec nor a function returning one"
    return name_problem(name)


def _warn(name: str, reason: str) -> None:
    warn(f"plug-in {name!r} of {GROUP} left out: {reason}")


def _builtin_table() -> dict[str, Callable[[], EncoderSpec]]:
    # imported by name, as an entry point is: the built-ins depend on this module, not vice versa
    return dict(importlib.import_module(BUILTIN_MODULE).BUILTINS)


def _ensure_loaded() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        builtins = _builtin_table()
        found: dict[str, Entry] = {}
        for name, obj in load_entry_points(GROUP, _problem):
            if found.get(name) is obj:  # the same package seen twice (e.g. a stale egg-info)
                continue
            if name in found or (name in builtins and obj is not builtins[name]):
                _warn(name, "another encoder has that name")
                continue
            found[name] = obj
        for name, factory in builtins.items():
            found.setdefault(name, factory)  # package metadata missing or stale
        rank = {name: i for i, name in enumerate(builtins)}
        for name in sorted(found, key=lambda n: (rank.get(n, len(rank)), n)):
            _entries[name] = found[name]
        _loaded = True


def _materialize(name: str) -> EncoderSpec | None:
    """The spec registered as ``name`` (calling its function the first time), or None."""
    with _lock:
        entry = _entries.get(name)
        if entry is None or isinstance(entry, EncoderSpec):
            return entry
        try:
            spec = entry()
        except Exception as error:  # a plug-in's own failure: leave it out, keep going
            problem: str | None = f"{type(error).__name__}: {error}"
        else:
            problem = None
            if not isinstance(spec, EncoderSpec):
                problem = f"it returned a {type(spec).__name__}, not an EncoderSpec"
            elif spec.name != name:
                problem = f"its entry point is {name!r} but its encoder is named {spec.name!r}"
        if problem is not None:
            del _entries[name]
            _warn(name, problem)
            return None
        _entries[name] = spec
        return spec


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` under ``spec.name`` (after the discovered ones); a name already taken, or one
    that is not a valid name, raises ValueError."""
    _ensure_loaded()
    with _lock:
        if spec.name in _entries:
            raise ValueError(f"an encoder named {spec.name!r} is already registered")
        problem = name_problem(spec.name)
        if problem:
            raise ValueError(problem)
        _entries[spec.name] = spec
    return spec


def encoder_names() -> list[str]:
    """Registered names, in order (nothing is built or imported to list them)."""
    _ensure_loaded()
    return list(_entries)


def list_encoders() -> list[EncoderSpec]:
    """Every registered encoder's spec, in order (a plug-in whose function fails is left out)."""
    return [spec for name in encoder_names() if (spec := _materialize(name)) is not None]


def find_encoder(name: str) -> EncoderSpec | None:
    """The spec registered under exactly ``name``, or None."""
    _ensure_loaded()
    return _materialize(name)


def reload_encoders() -> None:
    """Forget every registered encoder and find them again (after installing a plug-in)."""
    global _loaded
    with _lock:
        _entries.clear()
        _loaded = False
    _ensure_loaded()
