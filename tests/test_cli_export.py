"""``fewshot-gui export`` and ``undo-export`` end to end: label then sort in two commands, exit
codes, the summary line, and the unlucky user's scenarios (a namesake photo, an edited copy, a
second export, a full disk)."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest
from imagefactory import make_image

from fewshot_gui.cli import main
from fewshot_gui.data import export_files
from fewshot_gui.data.export import JOURNAL_NAME
from fewshot_gui.data.labels_csv import LabelRow, write_labels


def _hashes(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != JOURNAL_NAME
    }


def _labels(tmp_path, rows):
    return str(write_labels(tmp_path / "labels.csv", rows, ["a", "b"]))


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    return [make_image(folder / f"IMG_{i:04d}.jpg", color=(40 * i, 90, 200)) for i in range(1, 4)]


def test_label_then_export_then_undo_restores_every_byte(tmp_path, capsys):
    support, images = tmp_path / "support", tmp_path / "images"
    for name, color in {"reds": (220, 30, 30), "blues": (30, 40, 220)}.items():
        make_image(support / name / "ex.jpg", color=color)
        for i in range(3):
            make_image(images / "sub" / f"{name}{i}.jpg", color=color)
    make_image(images / "broken.jpg").write_bytes(b"not an image")
    before = _hashes(images)
    labels, dest = tmp_path / "labels.csv", tmp_path / "sorted"
    argv = ["label", str(support), str(images), "--out", str(labels), "--encoder", "conv4"]
    assert main([*argv, "--device", "cpu", "--cache-dir", str(tmp_path / "c"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", str(labels), str(dest), "--mode", "move"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and "exported 6 images (moved)" in summary[0]
    assert "1 rows with errors skipped" in summary[0]
    assert _hashes(images) == {"broken.jpg": before["broken.jpg"]}
    assert main(["export", str(labels), str(dest), "--mode", "move"]) == 0
    assert "6 already there" in capsys.readouterr().out
    assert main(["undo-export", str(dest)]) == 0
    assert "undid the export of 6 files" in capsys.readouterr().out
    assert _hashes(images) == before and _hashes(dest) == {}


def test_exit_codes_for_unusable_input(tmp_path, capsys):
    dest = str(tmp_path / "sorted")
    (tmp_path / "other.csv").write_text("name,class\nx,y\n")
    (tmp_path / "empty.csv").write_text("path,label,confidence,error\n")
    for labels in ("missing.csv", "other.csv", "empty.csv"):
        assert main(["export", str(tmp_path / labels), dest]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and labels in err[0]
    assert main(["undo-export", str(tmp_path)]) == 2
    assert "nothing to undo" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path / "other.csv"), dest, "--mode", "teleport"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("command", ["export", "undo-export"])
def test_help_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0 and "DEST" in capsys.readouterr().out.upper()


def test_undo_of_a_move_refuses_when_a_namesake_photo_appeared(tmp_path, photos, capsys):
    dest = tmp_path / "sorted"
    labels = _labels(tmp_path, [LabelRow(str(p), "a") for p in photos])
    original = photos[0].read_bytes()
    assert main(["export", labels, str(dest), "--mode", "move"]) == 0
    photos[0].write_bytes(bytes(reversed(original)))  # another photo, same name and size
    capsys.readouterr()
    assert main(["undo-export", str(dest)]) == 0
    captured = capsys.readouterr()
    assert "2 files" in captured.out and "1 refused" in captured.out
    assert "different file" in captured.err and str(photos[0]) in captured.err
    assert (dest / "a" / photos[0].name).read_bytes() == original
    assert photos[0].read_bytes() == bytes(reversed(original))


def test_undo_of_a_copy_keeps_the_copy_the_user_edited(tmp_path, photos, capsys):
    dest = tmp_path / "sorted"
    labels = _labels(tmp_path, [LabelRow(str(p), "b") for p in photos])
    assert main(["export", labels, str(dest)]) == 0
    (dest / "b" / photos[1].name).write_bytes(b"edited")
    assert main(["undo-export", str(dest)]) == 0
    assert "1 refused" in capsys.readouterr().out
    assert os.listdir(dest / "b") == [photos[1].name] and all(p.exists() for p in photos)


def test_second_export_to_the_same_folder_and_undo_newest_first(tmp_path, photos, capsys):
    dest = tmp_path / "sorted"
    first = _labels(tmp_path, [LabelRow(str(photos[0]), "a")])
    assert main(["export", first, str(dest), "--mode", "move"]) == 0
    both = _labels(tmp_path, [LabelRow(str(p), "a") for p in photos[:2]])
    assert main(["export", both, str(dest), "--mode", "move"]) == 0
    assert "exported 1 images (moved)" in capsys.readouterr().out.splitlines()[-1]
    assert main(["undo-export", str(dest)]) == 0
    assert photos[1].exists() and not photos[0].exists()
    assert "1 earlier export(s) can still be undone" in capsys.readouterr().out
    assert main(["undo-export", str(dest), "--all"]) == 0
    assert all(p.exists() for p in photos) and _hashes(dest) == {}


def test_a_full_disk_stops_with_exit_1_and_a_plain_message(tmp_path, photos, capsys, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export_files, "write_all", full)
    labels = _labels(tmp_path, [LabelRow(str(p), "a") for p in photos])
    assert main(["export", labels, str(tmp_path / "sorted")]) == 1
    assert "no space left" in capsys.readouterr().out
    assert _hashes(tmp_path / "sorted") == {} and all(p.exists() for p in photos)
