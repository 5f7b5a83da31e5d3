"""Name → adapter class, found through the entry-point group ``fewshot_gui.adapters``.

Every method, built-in or plug-in, is one entry point ``<name> = "<module>:<AdapterClass>"`` (the
built-ins' are in this project's ``pyproject.toml``); the registry loads them on first use. When
this package's own entry points are missing (a source tree that was never installed, a frozen app
without package metadata) the built-in modules of ``fewshot_gui.adapters`` are scanned instead.
A plug-in that fails to load, is not an :class:`Adapter` subclass, or takes a name already used
gives one :class:`~fewshot_gui.core.plugins.PluginWarning` and is left out.

Order (:func:`adapter_names`, hence every chooser and CLI list): by the classes' ``order``, then
name. :func:`register_adapter` adds a class by hand (tests); a name registered twice raises
ValueError. Everything else about a method (help, family, whether ``auto`` may pick it, whether
and how it is meta-trained) is read from its class: see :class:`~fewshot_gui.adapters.base.Adapter`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import threading
from typing import Any, TypeVar

from fewshot_gui.adapters.base import Adapter
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.plugins import entry_points, load_entry_points, own_entry_points_missing

GROUP = "fewshot_gui.adapters"

_ADAPTERS: dict[str, type[Adapter]] = {}
_loaded = False  # every method found and registered
_loading = False  # finding them now (a plug-in module being loaded may register itself)
_LOCK = threading.RLock()

A = TypeVar("A", bound=type[Adapter])


def register_adapter(cls: A) -> A:
    """Make ``cls`` available under ``cls.name`` (usable as a class decorator)."""
    _ensure_loaded()
    problem = _problem(cls.name if isinstance(cls, type) else "", cls)
    if problem:
        raise ValueError(problem)
    _add(cls)
    return cls


def adapter_names() -> list[str]:
    """Registered method names, in menu order (see the module docstring)."""
    _ensure_loaded()
    return list(_ADAPTERS)


def adapter_class(name: str) -> type[Adapter]:
    _ensure_loaded()
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise UsageError(
            f"Unknown method '{name}'. Choose one of: {', '.join(_ADAPTERS)}."
        ) from None


def adapter_family(name: str) -> str:
    """The method's family, e.g. ``"metric"``, ``"memory"`` or ``"optimization"``."""
    return adapter_class(name).family


def create_adapter(name: str, **kwargs: Any) -> Adapter:
    """A new, unfitted adapter; ``kwargs`` are ``state=`` and the method's options."""
    return adapter_class(name)(**kwargs)


def trainable_names() -> list[str]:
    """Methods that meta-training can train (their class provides a learner)."""
    return [name for name, cls in _registered() if cls.trainable()]


def auto_candidates(learned: bool = False) -> list[str]:
    """Methods ``auto`` compares by default (``auto = "default"``); with ``learned``, those it
    compares only when a meta-learned state is given (``auto = "learned"``)."""
    wanted = "learned" if learned else "default"
    return [name for name, cls in _registered() if cls.auto == wanted]


def method_help() -> dict[str, str]:
    """One line per method for choosers and ``--help``."""
    return {name: cls.help or name for name, cls in _registered()}


def reload_adapters() -> None:
    """Forget every registered class and find them again (after installing a plug-in)."""
    global _loaded
    with _LOCK:
        _ADAPTERS.clear()
        _loaded = False
        _ensure_loaded()


# --- discovery ------------------------------------------------------------------------------


def _registered() -> list[tuple[str, type[Adapter]]]:
    _ensure_loaded()
    return list(_ADAPTERS.items())


def _problem(name: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be registered under ``name`` (None: it can)."""
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        return f"{obj!r} is not an Adapter subclass"
    if getattr(obj, "name", None) != name:
        return f"the class is named {getattr(obj, 'name', None)!r}, the entry point {name!r}"
    if inspect.isabstract(obj):
        return f"{obj.__name__} leaves abstract methods unimplemented"
    if name in _ADAPTERS and _ADAPTERS[name] is not obj:
        return f"An adapter named '{name}' is already registered."
    return None


def _add(cls: type[Adapter]) -> None:
    _ADAPTERS[cls.name] = cls
    ordered = sorted(_ADAPTERS.values(), key=lambda c: (c.order, c.name))
    _ADAPTERS.clear()
    _ADAPTERS.update((c.name, c) for c in ordered)


def _ensure_loaded() -> None:
    global _loaded, _loading
    if _loaded:
        return
    with _LOCK:  # another thread waits here until every method is registered
        if _loaded or _loading:  # done meanwhile, or this thread is loading a plug-in
            return
        _loading = True
        try:
            if own_entry_points_missing(entry_points(GROUP)):
                for cls in _builtin_classes():
                    if cls.name not in _ADAPTERS:
                        _add(cls)
            for _, cls in load_entry_points(GROUP, _problem):
                _add(cls)
            _loaded = True
        finally:
            _loading = False


def _builtin_classes() -> list[type[Adapter]]:
    """Adapter classes defined in the modules of this package (no package metadata needed)."""
    package = importlib.import_module(__package__ or "fewshot_gui.adapters")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, Adapter)
                and obj.__module__ == module.__name__
                and "name" in vars(obj)
                and not inspect.isabstract(obj)
            ):
                found.append(obj)
    return found
