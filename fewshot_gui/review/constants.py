"""The review model's words and colours: label codes, the class palette, filters and sorts."""

from __future__ import annotations

PENDING = -1
"""Label code of an image that has no prediction yet."""
PALETTE = [
    "#e6550d",
    "#3182bd",
    "#31a354",
    "#756bb1",
    "#d6616b",
    "#17becf",
    "#bcbd22",
    "#8c564b",
    "#e377c2",
    "#636363",
    "#fd8d3c",
    "#6baed6",
]
UNKNOWN_COLOR = "#9e9e9e"
FILTERS = {
    "all": "all images",
    "pending": "not yet labeled",
    "unknown": "unknown",
    "likely_unknown": "likely unknown (far from every class)",
    "corrected": "labeled by you",
    "changed": "changed by the last action",
    "selection": "selected in the plot",
    "failed": "failed files",
}
"""Filter kinds (besides ``"class"``) and what the user reads for them."""
SORTS = {
    "folder order": "order",
    "least confident first": "confidence",
    "most unknown first": "unknown",
    "file name": "name",
}
