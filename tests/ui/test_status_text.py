"""The status bar's lines about a labeling job (plain functions, no window)."""

from __future__ import annotations

from types import SimpleNamespace

from fewshot_gui.ui.status_text import JobEnd, duration, finished_text, progress_text


def _end(**changes) -> JobEnd:
    base = dict(
        status="done",
        job="label",
        labeled=1200,
        failed=0,
        folder_total=1200,
        folder="/photos",
        method="metric",
        took=3.25,
    )
    return JobEnd(**{**base, **changes})


def test_durations_and_progress() -> None:
    assert (duration(None), duration(42.4), duration(75)) == ("estimating…", "42 s", "1:15")
    p = SimpleNamespace(stage="labeling", done=120, total=1000, items_per_s=85.2, eta_s=10)
    assert progress_text(p) == "Labeling: 120 / 1,000 · 85 images/s · 10 s left"
    done = SimpleNamespace(stage="examples", done=5, total=5, items_per_s=0, eta_s=None)
    assert progress_text(done) == "Embedding examples: 5 / 5"


def test_how_a_job_ended() -> None:
    assert finished_text(_end()).startswith("Labeled 1,200 images with metric (3.2 s). Correct")
    assert "; 3 could not be read" in finished_text(_end(failed=3, labeled=1197))
    assert finished_text(_end(status="cancelled", labeled=10)) == (
        "Stopped. 10 images labeled so far."
    )
    assert finished_text(_end(status="failed")) == "Labeling failed: see the message above."
    waiting = finished_text(_end(job="cached", labeled=1000, failed=50))
    assert waiting.startswith("Showing the saved predictions of 1,000 images; 150 are not")
    assert finished_text(_end(folder_total=0, labeled=0)) == "No images found in /photos."
