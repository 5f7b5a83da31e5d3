"""Qt infrastructure shared by the views and the workers: quiet imports and warm-up, thumbnails,
pool jobs, coalescing of bursts. No torch here, and nothing from ``workers/``."""

from fewshot_gui.qt import qtfix as _qtfix  # noqa: F401  (see qtfix.py)
