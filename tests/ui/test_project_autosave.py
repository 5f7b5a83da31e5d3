"""Never lose work: the unsaved marker, the quit prompt, autosave and its restore after a kill,
and one plain message for any damaged project file (issues 12 and 13)."""

from __future__ import annotations

import json

import pytest

from fewshot_gui.ui.project_controller import UNTITLED_AUTOSAVE, autosave_of


def _shown(app, qtbot):
    app.window.show()
    qtbot.waitExposed(app.window)
    return app


def test_changes_mark_the_title_and_quitting_asks(make_app, qtbot, colour_images, tmp_path):
    app = _shown(make_app(), qtbot)
    assert not app.window.isWindowModified() and "untitled" in app.window.windowTitle()
    app.add_class("red")
    assert app.window.isWindowModified()
    asked = []
    app.project.ask_unsaved = lambda: asked.append(1) or "cancel"
    assert not app.window.close() and app.window.isVisible()  # Cancel keeps it open
    app.project.ask_save_as = lambda: app.save_as(str(tmp_path / "kept"))
    app.project.ask_unsaved = lambda: asked.append(1) or "save"
    assert app.window.close()
    assert len(asked) == 2
    saved = json.loads((tmp_path / "kept.fewshot").read_text(encoding="utf-8"))
    assert [c["name"] for c in saved["classes"]] == ["red"]


def test_discard_quits_and_a_clean_window_does_not_ask(make_app, qtbot, tmp_path):
    app = _shown(make_app(), qtbot)
    app.add_class("red")
    app.project.ask_unsaved = lambda: "discard"
    assert app.window.close()
    other = _shown(make_app(), qtbot)
    other.project.ask_unsaved = lambda: pytest.fail("nothing to save: no question")
    assert other.window.close()


def test_untitled_work_is_autosaved_and_offered_after_a_kill(make_app, qtbot, colour_images):
    support, _ = colour_images
    first = make_app()
    first.project.autosave_timer.setInterval(10)
    first.add_class("red")
    first.state.add_examples("red", support["red"])  # not through undo: still autosaved
    saved = first.settings.data_dir() / UNTITLED_AUTOSAVE
    qtbot.waitUntil(saved.exists, timeout=5000)
    # "kill -9": first never closes; a new start finds the autosave and offers it
    second = make_app()
    offered = []
    second.project.ask_restore = lambda path, project: offered.append((path, project)) or True
    assert second.project.offer_restore()
    assert offered == [(saved, None)]
    assert second.state.names() == ["red"]
    assert second.window.isWindowModified() and second.project_path is None
    third = make_app()  # declining removes it
    third.project.ask_restore = lambda _path, _project: False
    assert not third.project.offer_restore() and not saved.exists()


def test_a_saved_projects_autosave_is_offered_when_it_is_opened(make_app, qtbot, tmp_path):
    app = make_app()
    app.add_class("red")
    project = str(tmp_path / "p.fewshot")
    assert app.save_as(project) and not app.window.isWindowModified()
    assert "p.fewshot" in app.window.windowTitle()
    app.add_class("blue")  # after the save
    assert app.project.autosave()
    assert autosave_of(project).exists()
    reopened = make_app()
    reopened.project.ask_restore = lambda _path, _project: True
    assert reopened.open_project(project)
    assert reopened.state.names() == ["red", "blue"] and reopened.window.isWindowModified()
    assert reopened.project_path == project
    assert reopened.save() and not autosave_of(project).exists()  # saving removes it
    app.project.autosave()
    declined = make_app()
    declined.project.ask_restore = lambda _path, _project: False
    assert declined.open_project(project)
    assert declined.state.names() == ["red", "blue"]  # the saved file, no autosave
    assert not autosave_of(project).exists() and not declined.window.isWindowModified()


def _deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize(
    "content",
    [
        b"\x89\xff\x00random bytes\xfe",
        '{"format": "fewshot-gui-project", "version": 1, "classes": 5}'.encode("utf-16"),
        _deep(100_000).encode(),
        b'{"format": "fewshot-gui-project", "version": 1, "classes": 5}',
        b'{"format": "fewshot-gui-project", "version": 1, "classes": [{"name": ["x"]}]}',
        b'{"format": "fewshot-gui-project", "version": 1, "corrections": [1, 2]}',
        b'{"format": "fewshot-gui-project", "version": "1"}',
        b"[1, 2, 3]",
        b"",
    ],
    ids=[
        "bytes",
        "utf16",
        "deep",
        "classes-int",
        "name-list",
        "corrections-list",
        "str-version",
        "list",
        "empty",
    ],
)
def test_a_damaged_project_file_gives_one_plain_message(make_app, qtbot, tmp_path, content):
    app = make_app()
    app.add_class("kept")
    path = tmp_path / "bad.fewshot"
    path.write_bytes(content)
    assert not app.open_project(str(path))  # no exception reaches the event loop
    assert app.window.messages.isVisibleTo(app.window)
    text = app.window.messages.label.text()
    assert "bad.fewshot" in text and "Traceback" not in text and len(text) < 300
    assert app.state.names() == ["kept"]  # the open project stays
    # the same file as an untitled autosave: one message, no restore, no crash
    saved = app.settings.data_dir() / UNTITLED_AUTOSAVE
    saved.write_bytes(content)
    other = make_app()
    other.project.ask_restore = lambda _path, _project: True
    assert not other.project.offer_restore()
    assert "untitled" in other.window.messages.label.text()
