"""The review model: what the user reviews, as plain Python and numpy (no Qt, no torch).

It holds the classes (name, colour, examples), the user's labels ("corrections"), the model's
prediction and confidence for every image of the labeled folder, the grid's filter and sort order,
the selection, the embedding plot's point ↔ image map, what the last action changed, and the rows
for export. Views subscribe to its :class:`Event` s: ``ui/state.py`` relays the class events as Qt
signals, ``ui/grid_model.py`` turns order events into row insertions and resets, the app recolours
the plot from :meth:`ReviewModel.point_colors`.

Review never loses its place: once the user labels an image in a sorted or filtered view, that
view's order is *frozen* (images keep their rows; new images are appended) until the user asks
for a re-sort (:meth:`ReviewModel.resort`) or changes the view (:meth:`ReviewModel.set_view`).

Image indices ("base" indices) are positions in :attr:`ReviewModel.paths`; "rows" are positions in
the view's :attr:`ReviewModel.order`; "points" are positions in :attr:`ReviewModel.point_paths`.

Modules: ``images`` (the images as whole arrays, merged with numpy), ``classes`` (classes,
examples, user labels), ``changes`` (what the last action changed), ``view`` (filter, sort,
frozen order), ``points`` (selection and plot map), ``model`` (:class:`ReviewModel`, which
combines them), ``events``, ``constants``.
"""

from fewshot_gui.review.constants import FILTERS, PALETTE, PENDING, SORTS, UNKNOWN_COLOR
from fewshot_gui.review.events import Event, ReviewCounts
from fewshot_gui.review.images import ImageTable
from fewshot_gui.review.model import ReviewModel

__all__ = [
    "FILTERS",
    "PALETTE",
    "PENDING",
    "SORTS",
    "UNKNOWN_COLOR",
    "Event",
    "ImageTable",
    "ReviewCounts",
    "ReviewModel",
]
