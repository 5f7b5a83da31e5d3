"""The desktop app's widgets (no torch here)."""

from fewshot_gui.workers import qtfix as _qtfix  # noqa: F401  (see qtfix.py)
