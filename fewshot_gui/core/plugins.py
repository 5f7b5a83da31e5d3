"""Plug-ins through entry points: what a package adds to fewshot-gui, found by
``importlib.metadata`` (the built-ins are registered the same way, in ``pyproject.toml``).

:func:`load_entry_points` loads every entry point of a group. A plug-in that cannot be loaded (its
module fails to import, the named object is missing, or ``check`` refuses it) gives one
:class:`PluginWarning` naming the entry point and the reason, and is left out: a broken plug-in never
stops the program. :func:`own_entry_points_missing` tells when this package's own metadata is
absent (a source tree that was never installed, a frozen app without metadata), so the caller can
fall back to scanning its built-in modules.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable, Iterator
from typing import Any

OWN_PACKAGE = "fewshot_gui"


class PluginWarning(UserWarning):
    """A plug-in entry point was left out (the message says which and why)."""


def warn(message: str) -> None:
    """Issue ``message`` as a :class:`PluginWarning` shown as ``fewshot-gui:0: PluginWarning: …``:
    about the plug-in, not about a line of this package (no installation path, no source line)."""
    warnings.warn_explicit(message, PluginWarning, "fewshot-gui", 0, module=__name__)


def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """The entry points of ``group`` of every installed distribution, this package's first (so
    that a plug-in cannot take a built-in's name)."""
    try:
        points = list(importlib.metadata.entry_points(group=group))
    except Exception as error:  # a damaged metadata folder of some other distribution
        warn(f"cannot read the {group} entry points: {error}")
        return []
    return sorted(points, key=lambda point: not _own(point))


def _own(point: importlib.metadata.EntryPoint) -> bool:
    return point.module.split(".")[0] == OWN_PACKAGE


def own_entry_points_missing(points: list[importlib.metadata.EntryPoint]) -> bool:
    """Whether none of ``points`` is this package's own (its metadata is missing or stale)."""
    return not any(_own(point) for point in points)


def load_entry_points(
    group: str, check: Callable[[str, Any], str | None] | None = None
) -> Iterator[tuple[str, Any]]:
    """``(name, object)`` of every entry point of ``group`` that loads and passes ``check``, one
    at a time (``check`` sees what the caller registered from the earlier ones).

    ``check(name, obj)`` returns None when ``obj`` is acceptable, else a reason; refused or broken
    entry points give one :class:`PluginWarning` each and are skipped.
    """
    for point in entry_points(group):
        try:
            obj = point.load()
        except Exception as error:
            reason: str | None = f"{type(error).__name__}: {error}"
        else:
            reason = check(point.name, obj) if check is not None else None
        if reason is not None:
            warn(f"plug-in {point.name!r} ({point.value}) of {group} left out: {reason}")
            continue
        yield point.name, obj
