"""Which class names a user may give: the one rule shared by the CLI, projects and the app."""

from __future__ import annotations

from fewshot_gui.core.types import UNKNOWN

RESERVED_LABELS: frozenset[str] = frozenset({UNKNOWN})
"""Labels the engine gives itself; a class may not be called by one (any letter case)."""


def class_name_problem(name: str) -> str | None:
    """A plain reason why ``name`` cannot be a class name, or None when it can."""
    stripped = name.strip()
    if not stripped:
        return "a class needs a name"
    if stripped.casefold() in RESERVED_LABELS:
        return (
            f"'{stripped}' is reserved for images that match no class; "
            "please choose another class name"
        )
    if any(ch in stripped for ch in "/\\\0") or stripped in (".", ".."):
        return f"'{stripped}' cannot be a class name (it would not be a valid folder name)"
    return None


FALLBACK_METHODS: tuple[str, ...] = ("auto", "metric", "memory", "anil", "maml")
"""Method names the app's chooser shows until the labeling worker has reported the adapter
registry's names (importing the registry imports torch, which the views never do)."""
