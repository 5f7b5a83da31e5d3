"""The desktop app's background work in Qt threads (labeling worker, thumbnails)."""

from fewshot_gui.qt import qtfix as _qtfix  # noqa: F401  (see qtfix.py)
