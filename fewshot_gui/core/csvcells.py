"""CSV cells that a spreadsheet shows as text: a cell starting with ``= + - @``, a tab or a carriage
return would be run as a formula (CSV injection), so it gets a leading ``'``. Numbers we write
(confidences, probabilities) are formatted by us and never escaped; only text from users — class
names, reasons — goes through :func:`safe_cell`. :func:`unescape_cell` reverses it when we read a CSV
we wrote.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """``text`` as a cell no spreadsheet evaluates (``'=1+1`` for ``=1+1``)."""
    if text.startswith(FORMULA_STARTS) or (
        text.startswith("'") and text[1:].startswith((*FORMULA_STARTS, "'"))
    ):
        return "'" + text  # an escaped-looking text is escaped too, so unescape_cell is exact
    return text


def unescape_cell(cell: str) -> str:
    """The original text of a cell written by :func:`safe_cell`."""
    if cell.startswith("'") and cell[1:].startswith((*FORMULA_STARTS, "'")):
        return cell[1:]
    return cell
