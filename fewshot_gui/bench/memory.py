"""Peak resident memory, and how far it grows while a large folder is labeled (``bench
--memory-check``)."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from fewshot_gui.bench.encoders import memory_check_encoder
from fewshot_gui.bench.synthetic import make_tiny_images


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory now (``/proc/self/statm``; the peak where that is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / 2**20


def memory_check(count: int, device: str, log: Any) -> dict[str, Any]:
    """Label ``count`` tiny images with a small encoder (embedding cache on) and measure how far
    resident memory grows above what it was once the model was loaded."""
    from fewshot_gui.core.types import Progress
    from fewshot_gui.session import LabelingSession

    with tempfile.TemporaryDirectory(prefix="fewshot-memcheck-") as tmp:
        folder = Path(tmp) / "images"
        start = time.perf_counter()
        make_tiny_images(folder, count)
        log(f"made {count} 64×64 JPEGs in {time.perf_counter() - start:.1f} s")
        session = LabelingSession(
            encoder=memory_check_encoder(), device=device, cache_dir=Path(tmp) / "cache"
        )
        session.load()
        first = sorted(folder.rglob("*.jpg"))[:2]
        for _ in session.set_support({"a": [first[0]], "b": [first[1]]}):
            pass
        rss_before = current_rss_mb()
        start, done = time.perf_counter(), 0
        for item in session.label(folder):
            if isinstance(item, Progress):
                done = item.done
        seconds = time.perf_counter() - start
        labeled = len(session.predictions().paths)
        dim = session.embed_dim
        session.close()
    growth = peak_rss_mb() - rss_before
    per_image_kb = growth * 1024 / max(1, labeled)
    log(
        f"memory check: {labeled} images labeled in {seconds:.1f} s; resident memory grew "
        f"{growth:.0f} MB above {rss_before:.0f} MB ({per_image_kb:.2f} KB per image, "
        f"{dim}-d embeddings)"
    )
    return {
        "memory_check_images": labeled,
        "memory_check_seconds": round(seconds, 1),
        "memory_check_embed_dim": dim,
        "rss_before_label_mb": round(rss_before, 1),
        "peak_rss_growth_mb": round(growth, 1),
        "peak_rss_growth_kb_per_image": round(per_image_kb, 3),
        "embeddings_mb": round(labeled * dim * 4 / 2**20, 1),
        "done": done,
    }
