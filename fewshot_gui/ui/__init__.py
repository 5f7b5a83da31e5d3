"""The desktop app's widgets (no torch here)."""

from fewshot_gui.qt import qtfix as _qtfix  # noqa: F401  (see qtfix.py)
