"""The app driving the real LabelingSession (tiny conv4 encoder, the drawn demo images)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from fewshot_gui.commands.gui import display_problem
from fewshot_gui.data.demo import CLASSES, ensure_demo
from fewshot_gui.qt.thumbnails import ThumbnailLoader, cache_key


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return ensure_demo(tmp_path_factory.mktemp("demo"), examples_per_class=2, unlabeled_per_class=5)


def test_demo_set_is_drawn_once_with_truth_and_project(demo):
    assert sorted(demo.examples) == sorted(CLASSES)
    assert len(demo.truth) == 20 and set(demo.truth.values()) == set(CLASSES)
    mtime = demo.project.stat().st_mtime_ns
    again = ensure_demo(demo.root, examples_per_class=2, unlabeled_per_class=5)
    assert again.truth == demo.truth and demo.project.stat().st_mtime_ns == mtime


def test_real_session_through_the_worker(make_app, qtbot, demo, tmp_path):
    from fewshot_gui.workers.labeling import default_session_factory

    app = make_app(
        factory=default_session_factory,
        session_options={"encoder": "conv4", "device": "cpu", "cache_dir": str(tmp_path / "cache")},
    )
    assert app.open_project(str(demo.project))
    with qtbot.waitSignal(app.jobDone, timeout=60000) as done:
        assert app.start()
    assert done.args[1] == "done", app.window.messages.label.text()
    model = app.window.grid.model
    assert sorted(model.paths) == sorted(demo.truth)
    assert app.window.controls.device.text().startswith("device: CPU")
    wrong = model.paths[0]  # correct it to a class the model did not predict
    target = next(c for c in CLASSES if c != model.predicted(model.index_of[wrong]))
    with qtbot.waitSignal(app.predictionsShown, timeout=10000):
        app.label_paths([wrong], target)
    assert model.label(model.index_of[wrong]) == target
    assert app.worker.worker._session.support[-1] == (wrong, target)


def test_thumbnails_are_decoded_off_thread_and_cached_on_disk(qtbot, demo, tmp_path):
    loader = ThumbnailLoader(size=64, cache_dir=tmp_path / "thumbs")
    path = demo.examples["circles"][0]
    assert loader.request(path) is None
    with qtbot.waitSignal(loader.ready, timeout=5000) as ready:
        pass
    image = ready.args[1]
    assert isinstance(image, QImage) and max(image.width(), image.height()) == 64
    assert loader.request(path) is not None  # memory cache
    key = cache_key(path, 64)
    assert (tmp_path / "thumbs" / key[:2] / key).exists()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with qtbot.waitSignal(loader.failed, timeout=5000) as failed:
        loader.request(str(bad))
    assert failed.args[0] == str(bad) and failed.args[1]
    loader.wait()


def test_no_display_gives_one_plain_line():
    message = display_problem({"DISPLAY": ""})
    assert "no display" in message and "self-test" in message
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


def test_missing_xcb_libraries_are_named_with_the_apt_command(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("fewshot_gui.commands.gui._loadable", lambda so: "cursor" not in so)
    message = display_problem({"DISPLAY": ":0"})
    assert "libxcb-cursor0" in message and "apt-get install libxcb-cursor0" in message
    assert "\n" not in message
