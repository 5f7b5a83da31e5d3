"""Pool jobs: results and errors come back as signals in the GUI thread, tagged; the thumbnail
cache is written through the one atomic writer."""

from __future__ import annotations

import os
import threading
import warnings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from imagefactory import make_image

from fewshot_gui.qt.pool import PoolRunner
from fewshot_gui.qt.thumbnails import ThumbnailLoader, cache_key


def test_results_and_errors_arrive_tagged_in_the_gui_thread(qtbot) -> None:
    runner = PoolRunner(2)
    seen: list[tuple] = []
    gui = threading.current_thread()
    runner.done.connect(lambda tag, value: seen.append((tag, value, threading.current_thread())))
    runner.failed.connect(lambda tag, text: seen.append((tag, text, threading.current_thread())))
    worker_threads: list[threading.Thread] = []

    def job() -> int:
        worker_threads.append(threading.current_thread())
        return 42

    def broken() -> None:
        raise ValueError("no such file")

    runner.submit(job, tag="a")
    runner.submit(broken, tag=("b", 1))
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
    assert {tag: value for tag, value, _ in seen} == {"a": 42, ("b", 1): "no such file"}
    assert all(thread is gui for *_, thread in seen)
    assert worker_threads and worker_threads[0] is not gui


def test_jobs_leave_the_warning_filters_alone(qtbot) -> None:
    """What superqt's workers do not: overlapping jobs must not change process-wide state."""
    before = list(warnings.filters), warnings.showwarning
    release = threading.Event()
    runner = PoolRunner(3)
    done: list[object] = []
    runner.done.connect(lambda tag, _v: done.append(tag))
    for tag in range(3):
        runner.submit(lambda: release.wait(5), tag)
    release.set()
    qtbot.waitUntil(lambda: len(done) == 3, timeout=5000)
    assert (list(warnings.filters), warnings.showwarning) == before


def test_clear_drops_queued_jobs(qtbot) -> None:
    runner = PoolRunner(1)
    release = threading.Event()
    ran: list[int] = []
    runner.submit(lambda: release.wait(5), -1)  # occupies the only thread
    for i in range(5):
        runner.submit(lambda i=i: ran.append(i), i)
    runner.clear()
    release.set()
    assert runner.wait(5000)
    assert ran == []


def test_thumbnail_cache_files_are_written_whole(qtbot, tmp_path) -> None:
    image = make_image(tmp_path / "photo.png", size=(300, 200))
    cache = tmp_path / "thumbs"
    loader = ThumbnailLoader(size=64, cache_dir=cache)
    with qtbot.waitSignal(loader.ready, timeout=5000):
        assert loader.request(str(image)) is None
    key = cache_key(str(image), 64)
    folder = cache / key[:2]
    assert sorted(os.listdir(folder)) == [key]  # no temporary file left beside it
    assert (folder / key).read_bytes()[:2] == b"\xff\xd8"  # a whole JPEG
