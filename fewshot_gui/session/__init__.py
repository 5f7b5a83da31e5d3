"""The labeling session (:class:`LabelingSession`), the engine's one entry point for labeling.

See :mod:`fewshot_gui.session.labeling` for how it is put together.
"""

from fewshot_gui.session.embedding import STOP_CHUNK, ImageEmbedder, StopRequested
from fewshot_gui.session.labeling import BatchResult, LabelingSession

__all__ = ["STOP_CHUNK", "BatchResult", "ImageEmbedder", "LabelingSession", "StopRequested"]
