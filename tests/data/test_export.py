"""Export: copy / move / link into class folders, collisions, journal, undo after a restart."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data import export as ex
from fewshot_gui.data.export import (
    JOURNAL_NAME,
    LabelRow,
    export_images,
    undo_export,
    write_labels,
)


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
    assert not result.failures
    assert (dest / "cat" / "a.jpg").read_bytes() == b"existing"  # never overwritten
    assert (dest / "cat" / "a (1).jpg").read_bytes() == b"aaa"
    assert (dest / "cat" / "a (2).jpg").read_bytes() == b"AAA"
    assert (dest / "dog" / "b.jpg").read_bytes() == b"bbbb"
    assert (dest / "_unknown" / "c.png").read_bytes() == b"cc"
    assert all(p.exists() for p in images.values())


def test_unknown_can_be_left_in_place(tmp_path, images):
    result = export_images(_rows(images), tmp_path / "out", "move", unknown="leave")
    assert result.skipped == [str(images["c.png"])]
    assert images["c.png"].exists() and not (tmp_path / "out" / "_unknown").exists()


def test_move_and_undo_after_restart_in_a_new_process(tmp_path, images):
    dest = tmp_path / "out"
    result = export_images(_rows(images), dest, "move")
    assert len(result.done) == 4 and not any(p.exists() for p in images.values())
    assert (dest / "cat" / "a (1).jpg").read_bytes() == b"AAA"
    journal = dest / JOURNAL_NAME
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sum(e.get("state") == "begin" and e["op"] == "move" for e in lines) == 4
    code = (
        "from fewshot_gui.data.export import undo_export; import sys; "
        "r = undo_export(sys.argv[1]); print(len(r.undone), len(r.failures))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(dest)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["4", "0"]
    assert images["sub/a.jpg"].read_bytes() == b"AAA" and images["a.jpg"].read_bytes() == b"aaa"
    assert not (dest / "cat").exists()  # empty class folders removed
    again = undo_export(journal)  # idempotent
    assert again.undone == [] and again.failures == []


def test_cross_device_move_copies_verifies_then_deletes(tmp_path, images, monkeypatch):
    def no_link(*_args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(ex.os, "link", no_link)
    result = export_images([LabelRow(str(images["a.jpg"]), "cat")], tmp_path / "out", "move")
    assert result.done and not images["a.jpg"].exists()
    assert (tmp_path / "out" / "cat" / "a.jpg").read_bytes() == b"aaa"


def test_interrupted_move_is_undone_safely(tmp_path, images):
    dest = tmp_path / "out"
    (dest / "cat").mkdir(parents=True)
    journal = ex.Journal(dest / JOURNAL_NAME)
    copy = dest / "cat" / "a.jpg"
    copy.write_bytes(b"aaa")  # a crash after the copy, before the original was deleted
    journal.write(op="move", state="begin", id="1", src=str(images["a.jpg"]), dst=str(copy))
    result = undo_export(dest)
    assert images["a.jpg"].read_bytes() == b"aaa" and not copy.exists()
    assert result.failures == []


def test_link_and_copy_undo(tmp_path, images):
    for mode in ("link", "copy"):
        dest = tmp_path / mode
        export_images(_rows(images), dest, mode)
        if mode == "link":
            assert os.path.islink(dest / "cat" / "a.jpg")
        undo_export(dest)
        assert not (dest / "cat").exists() and all(p.exists() for p in images.values())


def test_missing_source_is_a_failure_not_a_crash(tmp_path, images):
    rows = [LabelRow(str(tmp_path / "gone.jpg"), "cat"), LabelRow(str(images["a.jpg"]), "cat")]
    result = export_images(rows, tmp_path / "out", "copy")
    assert len(result.done) == 1 and "no longer exists" in result.failures[0][1]


def test_bad_arguments(tmp_path):
    with pytest.raises(UsageError):
        export_images([], tmp_path, "teleport")
    with pytest.raises(UsageError, match="nothing to undo"):
        undo_export(tmp_path / "nowhere")


def test_class_names_become_safe_folder_names(tmp_path, images):
    export_images([LabelRow(str(images["a.jpg"]), "a/b: c?")], tmp_path / "out", "copy")
    assert (tmp_path / "out" / "a_b_ c_" / "a.jpg").exists()


def test_labels_csv_and_json(tmp_path, images):
    rows = _rows(images)
    with open(write_labels(rows, tmp_path / "labels.csv"), newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table[2] == {
        "path": str(images["b.jpg"]),
        "label": "dog",
        "confidence": "1.000000",
        "source": "user",
    }
    data = json.loads(write_labels(rows, tmp_path / "labels.json").read_text())
    assert data[0]["label"] == "cat" and data[0]["source"] == "model"
