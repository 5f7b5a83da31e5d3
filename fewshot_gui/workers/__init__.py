"""The desktop app's background work in Qt threads (labeling worker, thumbnails)."""

from fewshot_gui.workers import qtfix as _qtfix  # noqa: F401  (see qtfix.py)
