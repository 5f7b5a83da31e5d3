"""Name → adapter class. Registering a name twice is a programming error (ValueError)."""

from __future__ import annotations

from typing import Any, TypeVar

from fewshot_gui.adapters.base import Adapter
from fewshot_gui.core.errors import UsageError

_ADAPTERS: dict[str, type[Adapter]] = {}

A = TypeVar("A", bound=type[Adapter])


def register_adapter(cls: A) -> A:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    name = cls.name
    if name in _ADAPTERS:
        raise ValueError(f"An adapter named '{name}' is already registered.")
    if cls.family not in ("metric", "memory", "optimization", "auto"):
        raise ValueError(f"Adapter '{name}' has unknown family '{cls.family}'.")
    _ADAPTERS[name] = cls
    return cls


def adapter_names() -> list[str]:
    """Registered method names, in registration order."""
    return list(_ADAPTERS)


def adapter_class(name: str) -> type[Adapter]:
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise UsageError(
            f"Unknown method '{name}'. Choose one of: {', '.join(_ADAPTERS)}."
        ) from None


def adapter_family(name: str) -> str:
    """``"metric"``, ``"memory"`` or ``"optimization"``."""
    return adapter_class(name).family


def create_adapter(name: str, **kwargs: Any) -> Adapter:
    """A new, unfitted adapter; ``kwargs`` are ``state=`` and the method's options."""
    return adapter_class(name)(**kwargs)
