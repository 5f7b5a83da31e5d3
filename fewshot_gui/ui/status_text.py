"""What the status bar says about a labeling job: its progress, and how it ended (plain text,
no Qt: tested on its own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STAGES = {"examples": "Embedding examples", "labeling": "Labeling"}


def duration(seconds: float | None) -> str:
    """``75`` → ``"1:15"``, ``42`` → ``"42 s"``, None → ``"estimating…"``."""
    if seconds is None:
        return "estimating…"
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def progress_text(p: Any) -> str:
    """``Labeling: 120 / 1,000 · 85 images/s · 10 s left`` for a :class:`Progress`."""
    stage = STAGES.get(p.stage, p.stage)
    rate = f" · {p.items_per_s:,.0f} images/s" if p.items_per_s else ""
    eta = f" · {duration(p.eta_s)} left" if p.done < p.total else ""
    return f"{stage}: {p.done:,} / {p.total:,}{rate}{eta}"


@dataclass
class JobEnd:
    """How a job ended and what it left: ``status`` is "done", "cancelled" or "failed";
    ``job`` "label", "cached" or "refit"; ``labeled`` and ``failed`` count the grid's images;
    ``folder_total`` is the folder's image count (-1 unknown); ``took`` seconds."""

    status: str
    job: str
    labeled: int
    failed: int
    folder_total: int
    folder: str
    method: str
    took: float


def finished_text(end: JobEnd) -> str:
    """The status bar's line when a job ends (failed files are not counted as labeled)."""
    n, failed = end.labeled, end.failed
    also = f"; {failed:,} could not be read (see Failed files)" if failed else ""
    if end.status == "failed":
        return "Labeling failed: see the message above."
    if end.status == "cancelled":
        return f"Stopped. {n:,} images labeled so far{also}."
    if end.job == "cached":
        waiting = max(0, end.folder_total - n - failed)
        if waiting:
            return (
                f"Showing the saved predictions of {n:,} images; {waiting:,} are not labeled "
                "yet: press “Label folder”."
            )
        return f"Showing the saved predictions of {n:,} images{also}."
    if end.folder_total == 0 and end.folder:
        return f"No images found in {end.folder}."
    return (
        f"Labeled {n:,} images with {end.method} ({end.took:.1f} s){also}. Correct any label: "
        "keys 1–9, Enter accepts; sort by least confident to review."
    )
