"""Qt tests run offscreen, with settings and caches isolated in tmp_path, and a fake session."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PIL import Image

from fewshot_gui.core.types import FileFailure, Predictions, Progress


class FakeBatch:
    def __init__(self, predictions: Predictions, failures: list[FileFailure]) -> None:
        self.predictions, self.failures = predictions, failures


class FakeSession:
    """The LabelingSession API over colour-coded images: the embedding is the mean RGB colour.

    ``delay`` seconds per batch lets tests cancel mid-run. Records calls in ``calls``. ``disk``
    stands for the on-disk embedding cache, shared by every fake session.
    """

    device_name = "FakeDevice"
    disk: dict[str, np.ndarray] = {}  # noqa: RUF012

    def __init__(self, settings: dict, delay: float = 0.0, batch: int = 8) -> None:
        self.settings, self.delay, self.batch = settings, delay, batch
        self.support: dict[str, str] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.labeled: list[str] = []
        self.calls: list[tuple] = []
        self.closed_jobs = 0
        self.failures: dict[str, FileFailure] = {}

    def _embed(self, path: str) -> np.ndarray:
        if path not in self.vectors:
            with Image.open(path) as image:
                self.vectors[path] = np.asarray(image.convert("RGB"), np.float32).mean((0, 1))
            FakeSession.disk[path] = self.vectors[path]
        return self.vectors[path]

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.support.values()))

    def set_support(self, examples, reviewed=()) -> Iterator[Progress]:
        self.calls.append(("set_support", {k: list(v) for k, v in examples.items()}))
        self.support = {str(p): name for name, paths in examples.items() for p in paths}
        self.reviewed = {str(p) for p in reviewed}
        for p in self.support:
            self._embed(p)
        yield Progress(len(self.support), len(self.support), "examples")

    def _predict(self, paths: list[str]) -> Predictions:
        classes = self.classes
        protos = np.stack(
            [
                np.mean([self.vectors[p] for p, c in self.support.items() if c == k], 0)
                for k in classes
            ]
        )
        x = np.stack([self.vectors[p] for p in paths]) if paths else np.zeros((0, 3))
        d = ((x[:, None, :] - protos[None]) ** 2).sum(-1) / 1000.0
        e = np.exp(-(d - d.min(1, keepdims=True)))
        return Predictions.from_probabilities(paths, classes, e / e.sum(1, keepdims=True))

    def label(self, folder, cached_only: bool = False) -> Iterator:
        root = Path(folder)
        if not root.is_dir():
            from fewshot_gui.core.errors import UsageError

            raise UsageError(f"{folder} is not a folder")
        files = sorted(str(p) for p in root.rglob("*") if p.is_file())
        self.labeled = []
        yield Progress(0, len(files), "labeling")
        if cached_only:  # only what the "disk" holds, nothing decoded
            self.calls.append(("cached_only", len(files)))
            self.vectors.update({p: FakeSession.disk[p] for p in files if p in FakeSession.disk})
            self.labeled = [p for p in files if p in FakeSession.disk]
            yield FakeBatch(self._predict(self.labeled), [])
            return
        try:
            for start in range(0, len(files), self.batch):
                chunk, failures, ok = files[start : start + self.batch], [], []
                for p in chunk:
                    try:
                        self._embed(p)
                        ok.append(p)
                    except OSError:
                        failures.append(FileFailure(p, "not an image file"))
                if self.delay:
                    time.sleep(self.delay)
                self.labeled += ok
                yield Progress(start + len(chunk), len(files), "labeling", 100.0, 1.0)
                yield FakeBatch(self._predict(ok), failures)
        except GeneratorExit:
            self.closed_jobs += 1
            raise

    def add_example(self, path, label, *, reviewed=False) -> Predictions:
        self.calls.append(("add", str(path), label))
        self.reviewed = (
            {*getattr(self, "reviewed", ()), str(path)}
            if reviewed
            else (getattr(self, "reviewed", set()) - {str(path)})
        )
        self._embed(str(path))
        self.support[str(path)] = label
        return self.predictions()

    def remove_example(self, path) -> Predictions:
        self.calls.append(("remove", str(path)))
        del self.support[str(path)]
        return self.predictions()

    def predictions(self) -> Predictions:
        return self._predict(list(self.labeled))

    def embeddings(self):
        vectors = [self.vectors[p] for p in self.labeled]
        return list(self.labeled), np.stack(vectors) if vectors else np.zeros((0, 3), np.float32)

    def close(self) -> None:
        pass


def setup_labeling(app, support: dict[str, list[str]], folder) -> None:
    """One class per key of ``support`` with its example images, and ``folder`` to label."""
    for name in support:
        app.add_class(name)
    for name, paths in support.items():
        app.state.add_examples(name, paths)
    app.window.controls.folder.setText(str(folder))


def run_labeling(qtbot, app, timeout: int = 10000) -> str:
    """Start labeling and wait for the job to end; returns its status."""
    with qtbot.waitSignal(app.jobDone, timeout=timeout) as blocker:
        assert app.start()
    return blocker.args[1]


COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def write_colour_images(root: Path, per_class: int = 6, examples: int = 2):
    """``root/examples/<c>/*.png`` and ``root/folder/*.png`` (mixed, noisy colours) + truth."""
    rng = np.random.default_rng(0)
    support, truth = {}, {}
    for name, rgb in COLORS.items():
        for i in range(examples + per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 20, (24, 24, 3)), 0, 255).astype(
                np.uint8
            )
            if i < examples:
                path = root / "examples" / name / f"{name}{i}.png"
            else:
                path = root / "folder" / f"img_{name}_{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
            if i < examples:
                support.setdefault(name, []).append(str(path))
            else:
                truth[str(path)] = name
    return support, truth


@pytest.fixture
def colour_images(tmp_path):
    return write_colour_images(tmp_path)


@pytest.fixture
def make_app(qtbot, tmp_path):
    """Factory for an AppController with a fake (or given) session factory; shut down after."""
    from PySide6.QtCore import QSettings

    from fewshot_gui.app import AppController
    from fewshot_gui.ui.settings import AppSettings

    made = []

    def make(factory=None, delay: float = 0.0, batch: int = 8, **kwargs):
        sessions = []

        def fake(settings):
            session = FakeSession(settings, delay, batch)
            sessions.append(session)
            return session

        settings = AppSettings(
            QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        )
        controller = AppController(
            factory or fake, settings=settings, thumbnail_cache=None, **kwargs
        )
        controller.sessions = sessions
        # no modal dialogs in tests (qtbot closes the window before this fixture's teardown);
        # the tests of the prompts replace these
        controller.project.ask_unsaved = lambda: "discard"
        controller.project.ask_restore = lambda _saved, _project: False
        qtbot.addWidget(controller.window)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.shutdown()
