"""Export: copy / move / link into class folders, collisions, journal, undo after a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data import export_files
from fewshot_gui.data.export import (
    JOURNAL_NAME,
    LabelRow,
    export_images,
    undo_export,
    write_labels,
)
from fewshot_gui.data.labels_csv import read_labels


@pytest.fixture
def images(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {}
    for name, data in (
        ("a.jpg", b"aaa"),
        ("b.jpg", b"bbbb"),
        ("sub/a.jpg", b"AAA"),
        ("c.png", b"cc"),
    ):
        (src / name).write_bytes(data)
        files[name] = src / name
    return files


def _rows(files):
    return [
        LabelRow(str(files["a.jpg"]), "cat", 0.9),
        LabelRow(str(files["sub/a.jpg"]), "cat", 0.8),
        LabelRow(str(files["b.jpg"]), "dog", 1.0, "user"),
        LabelRow(str(files["c.png"]), "unknown", 0.3),
    ]


def test_copy_resolves_collisions_and_keeps_originals(tmp_path, images):
    dest = tmp_path / "out"
    (dest / "cat").mkdir(parents=True)
    (dest / "cat" / "a.jpg").write_bytes(b"existing")
    result = export_images(_rows(images), dest, "copy")
    assert not result.failures and len(result.done) == 4
    assert (dest / "cat" / "a.jpg").read_bytes() == b"existing"  # never overwritten
    assert (dest / "cat" / "a (1).jpg").read_bytes() == b"aaa"
    assert (dest / "cat" / "a (2).jpg").read_bytes() == b"AAA"
    assert (dest / "dog" / "b.jpg").read_bytes() == b"bbbb"
    assert (dest / "_unknown" / "c.png").read_bytes() == b"cc"
    assert all(p.exists() for p in images.values())
    assert "exported 4 images (copied)" in result.summary()


def test_unknown_can_be_left_in_place(tmp_path, images):
    result = export_images(_rows(images), tmp_path / "out", "move", unknown="skip")
    assert result.skipped == [str(images["c.png"])]
    assert images["c.png"].exists() and not (tmp_path / "out" / "_unknown").exists()


def test_rows_with_errors_or_no_label_are_not_exported(tmp_path, images):
    rows = [
        LabelRow(str(images["a.jpg"]), "", None, error="cannot read"),
        LabelRow(str(images["b.jpg"]), "  ", None),
        LabelRow(str(images["c.png"]), "cat"),
    ]
    result = export_images(rows, tmp_path / "out", "copy")
    assert len(result.invalid) == 2 and len(result.done) == 1
    assert "2 rows with errors skipped" in result.summary()


def test_move_and_undo_after_restart_in_a_new_process(tmp_path, images):
    dest = tmp_path / "out"
    result = export_images(_rows(images), dest, "move")
    assert len(result.done) == 4 and not any(p.exists() for p in images.values())
    assert (dest / "cat" / "a (1).jpg").read_bytes() == b"AAA"
    records = [json.loads(line) for line in (dest / JOURNAL_NAME).read_text().splitlines()]
    begins = [r for r in records if r["ev"] == "begin"]
    assert len(begins) == 4 and all(r["op"] == "move" and len(r["hash"]) == 32 for r in begins)
    assert {r["size"] for r in begins} == {3, 4, 2}
    code = (
        "from fewshot_gui.data.export import undo_export; import sys; "
        "r = undo_export(sys.argv[1]); print(len(r.undone), len(r.refused), len(r.failures))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(dest)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["4", "0", "0"]
    assert images["sub/a.jpg"].read_bytes() == b"AAA" and images["a.jpg"].read_bytes() == b"aaa"
    assert not (dest / "cat").exists()  # empty class folders removed
    again = undo_export(dest / JOURNAL_NAME)  # the journal's path works too; nothing left
    assert again.undone == [] and again.exports == [] and "nothing left" in again.summary()


def test_cross_device_move_copies_under_a_temp_name_then_deletes(tmp_path, images, monkeypatch):
    monkeypatch.setattr(export_files, "hardlink", lambda src, dst: False)
    dest = tmp_path / "out"
    result = export_images([LabelRow(str(images["a.jpg"]), "cat")], dest, "move")
    assert result.done and not images["a.jpg"].exists()
    assert (dest / "cat" / "a.jpg").read_bytes() == b"aaa"
    assert [p.name for p in (dest / "cat").iterdir()] == ["a.jpg"]  # the temp name is gone
    assert undo_export(dest).undone and images["a.jpg"].read_bytes() == b"aaa"


def test_link_and_copy_undo(tmp_path, images):
    for mode in ("link", "copy"):
        dest = tmp_path / mode
        export_images(_rows(images), dest, mode)
        if mode == "link":
            assert os.readlink(dest / "cat" / "a.jpg") == str(images["a.jpg"])
        result = undo_export(dest)
        assert len(result.undone) == 4 and not result.refused
        assert not (dest / "cat").exists() and all(p.exists() for p in images.values())


def test_missing_source_is_a_failure_not_a_crash(tmp_path, images):
    rows = [LabelRow(str(tmp_path / "gone.jpg"), "cat"), LabelRow(str(images["a.jpg"]), "cat")]
    result = export_images(rows, tmp_path / "out", "copy")
    assert len(result.done) == 1 and "no longer exists" in result.failures[0][1]


def test_bad_arguments(tmp_path):
    with pytest.raises(UsageError):
        export_images([], tmp_path, "teleport")
    with pytest.raises(UsageError):
        export_images([], tmp_path, "copy", unknown="elsewhere")
    with pytest.raises(UsageError, match="nothing to undo"):
        undo_export(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot create"):
        export_images([], tmp_path / "file", "copy")


def test_class_names_become_safe_folder_names(tmp_path, images):
    export_images([LabelRow(str(images["a.jpg"]), "a/b: c?")], tmp_path / "out", "copy")
    assert (tmp_path / "out" / "a_b_ c_" / "a.jpg").exists()


def test_app_labels_file_round_trips_with_source(tmp_path, images):
    rows = _rows(images)
    table = read_labels(write_labels(rows, tmp_path / "labels.csv"))
    assert [(r.path, r.label, r.source) for r in table.rows] == [
        (r.path, r.label, r.source) for r in rows
    ]
    data = json.loads(write_labels(rows, tmp_path / "labels.json").read_text())
    expected = {"path": str(images["b.jpg"]), "label": "dog", "confidence": 1.0, "source": "user"}
    assert {key: data[2][key] for key in expected} == expected
