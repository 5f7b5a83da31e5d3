"""Project files: round trip, relative paths, atomic writes, versions."""

from __future__ import annotations

import json

import pytest

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.project import (
    VERSION,
    ClassInfo,
    Project,
    load_project,
    save_project,
)


def _project(root) -> Project:
    return Project(
        [
            ClassInfo("cat", "#ff0000", [str(root / "ex" / "c1.jpg")]),
            ClassInfo("dog", "#00ff00", ["/elsewhere/d1.jpg"]),
        ],
        {str(root / "imgs" / "a.jpg"): "dog"},
        {"folder": str(root / "imgs"), "method": "memory", "encoder": "conv4"},
    )


def test_round_trip_keeps_everything(tmp_path):
    project = _project(tmp_path)
    path = save_project(project, tmp_path / "p.fewshot")
    loaded = load_project(path)
    assert loaded == project
    assert loaded.support() == {
        "cat": [str(tmp_path / "ex" / "c1.jpg")],
        "dog": ["/elsewhere/d1.jpg", str(tmp_path / "imgs" / "a.jpg")],
    }


def test_paths_inside_the_project_folder_are_relative_so_it_can_move(tmp_path):
    save_project(_project(tmp_path / "a"), tmp_path / "a" / "p.fewshot")
    data = json.loads((tmp_path / "a" / "p.fewshot").read_text())
    assert data["classes"][0]["examples"] == ["ex/c1.jpg"]
    assert data["classes"][1]["examples"] == ["/elsewhere/d1.jpg"]
    (tmp_path / "a").rename(tmp_path / "b")
    moved = load_project(tmp_path / "b" / "p.fewshot")
    assert moved.classes[0].examples == [str(tmp_path / "b" / "ex" / "c1.jpg")]
    assert moved.settings["folder"] == str(tmp_path / "b" / "imgs")


def test_newer_version_is_refused_with_a_plain_message(tmp_path):
    path = tmp_path / "new.fewshot"
    path.write_text(json.dumps({"format": "fewshot-gui-project", "version": VERSION + 1}))
    with pytest.raises(UsageError, match="newer fewshot-gui"):
        load_project(path)


def test_version_0_is_migrated(tmp_path):
    path = tmp_path / "old.fewshot"
    path.write_text(
        json.dumps({"classes": {"cat": ["c.jpg"]}, "folder": "imgs", "method": "metric"})
    )
    project = load_project(path)
    assert project.class_names() == ["cat"]
    assert project.classes[0].examples == [str(tmp_path / "c.jpg")]
    assert project.settings == {"folder": str(tmp_path / "imgs"), "method": "metric"}


@pytest.mark.parametrize(
    "text", ["not json", "[1, 2]", '{"format": "other"}', '{"version": 1, "classes": [{"nom": 1}]}']
)
def test_damaged_files_give_usage_errors(tmp_path, text):
    path = tmp_path / "bad.fewshot"
    path.write_text(text)
    with pytest.raises(UsageError):
        load_project(path)


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = save_project(_project(tmp_path), tmp_path / "p.fewshot")
    before = path.read_text()

    def boom(*_args):
        raise OSError("disk full")

    monkeypatch.setattr("fewshot_gui.data.project.os.replace", boom)
    with pytest.raises(OSError):
        save_project(Project(), path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
