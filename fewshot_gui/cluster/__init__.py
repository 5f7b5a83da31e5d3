"""Label millions of images on a Ray cluster with the local engine's code (no Qt).

``fewshot-gui label SUPPORT IMAGES --engine ray`` (:mod:`.driver`): the support set is embedded and
the adapter fitted once on the driver by the same :class:`~fewshot_gui.session.LabelingSession`
as locally; Ray Data decodes images in tasks (:mod:`.worker`, the local decode and preprocessing
functions) ahead of an actor pool that holds one encoder per actor and predicts with the fitted
adapter; the driver writes Parquet shards atomically (:mod:`.shards`), so a re-run resumes.
:mod:`.result` reads a run's output folder back (the app's review); :mod:`.stored` builds a
labeling session from its stored embeddings, so corrections re-label with the session's code.

Ray is optional (``pip install "fewshot-gui[cluster]"``); only :mod:`.driver` and :mod:`.worker`
import it, and only when a run starts.
"""

from __future__ import annotations

from fewshot_gui.core.errors import UsageError

INSTALL_HINT = 'pip install "fewshot-gui[cluster]" (or pip install "ray[data]")'


def require_ray() -> None:
    """Raise UsageError (one line) when Ray Data cannot be imported."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(
            f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
