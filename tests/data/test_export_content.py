"""Undo by content, idempotent re-export, changed labels, several exports, full disks, partial
files: nothing a user owns is deleted or overwritten, and no partial file carries a final name."""

from __future__ import annotations

import errno
import json
import os

import pytest

from fewshot_gui.data import export_files
from fewshot_gui.data.export import JOURNAL_NAME, LabelRow, export_images, undo_export


def _photo(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tree(root):
    """{relative path: bytes} of every file below ``root`` except the journal."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != JOURNAL_NAME
    }


@pytest.fixture
def camera(tmp_path):
    return {
        name: _photo(tmp_path / "camera" / name, data)
        for name, data in (("IMG_0001.jpg", b"sunset!!"), ("IMG_0002.jpg", b"mountain"))
    }


def test_undo_of_a_move_never_deletes_the_exported_photo_when_a_namesake_appeared(tmp_path, camera):
    dest = tmp_path / "sorted"
    rows = [
        LabelRow(str(camera["IMG_0001.jpg"]), "sky"),
        LabelRow(str(camera["IMG_0002.jpg"]), "hill"),
    ]
    export_images(rows, dest, "move")
    _photo(camera["IMG_0001.jpg"], b"birthday")  # same name, same size, another photo
    result = undo_export(dest)
    assert camera["IMG_0001.jpg"].read_bytes() == b"birthday"  # the newcomer is untouched
    assert (dest / "sky" / "IMG_0001.jpg").read_bytes() == b"sunset!!"  # the original is kept
    assert camera["IMG_0002.jpg"].read_bytes() == b"mountain"  # the other one came back
    assert len(result.undone) == 1 and len(result.refused) == 1
    assert "different file" in result.refused[0][1] and "refused" in result.summary()


def test_undo_of_a_copy_keeps_an_edited_copy_and_a_copy_whose_original_is_gone(tmp_path, camera):
    extra = _photo(tmp_path / "camera" / "IMG_0003.jpg", b"lake")
    rows = [LabelRow(str(p), "trip") for p in (*camera.values(), extra)]
    dest = tmp_path / "sorted"
    export_images(rows, dest, "copy")
    (dest / "trip" / "IMG_0001.jpg").write_bytes(b"sunset, cropped")  # edited after export
    extra.unlink()  # the original of another copy is deleted: the copy is now the only one
    result = undo_export(dest)
    assert (dest / "trip" / "IMG_0001.jpg").read_bytes() == b"sunset, cropped"
    assert (dest / "trip" / "IMG_0003.jpg").read_bytes() == b"lake"
    assert not (dest / "trip" / "IMG_0002.jpg").exists()  # an unchanged copy is removed
    reasons = " | ".join(r for _, r in result.refused)
    assert len(result.refused) == 2 and "changed after the export" in reasons
    assert "gone or changed" in reasons


def test_undo_of_a_move_leaves_an_edited_exported_file(tmp_path, camera):
    dest = tmp_path / "sorted"
    export_images([LabelRow(str(camera["IMG_0001.jpg"]), "sky")], dest, "move")
    (dest / "sky" / "IMG_0001.jpg").write_bytes(b"retouched")
    result = undo_export(dest)
    assert not camera["IMG_0001.jpg"].exists()  # nothing written under the original name
    assert (dest / "sky" / "IMG_0001.jpg").read_bytes() == b"retouched"
    assert result.refused and not result.undone


@pytest.mark.parametrize("mode", ["copy", "move", "link"])
def test_exporting_again_is_idempotent(tmp_path, camera, mode):
    rows = [LabelRow(str(p), "trip") for p in camera.values()]
    dest = tmp_path / "sorted"
    export_images(rows, dest, mode)
    before = sorted(os.listdir(dest / "trip"))
    again = export_images(rows, dest, mode)
    assert again.done == [] and len(again.already) == 2 and not again.failures
    assert "2 already there" in again.summary()
    assert sorted(os.listdir(dest / "trip")) == before  # no "IMG_0001 (1).jpg"
    undo_export(dest)  # the empty second export is passed over: the first one is undone
    assert all(p.is_file() and not p.is_symlink() for p in camera.values())
    assert not (dest / "trip").exists()


def test_same_content_already_in_the_class_folder_is_not_copied_again(tmp_path, camera):
    dest = tmp_path / "sorted"
    _photo(dest / "trip" / "IMG_0001.jpg", b"sunset!!")  # put there by hand, no journal entry
    result = export_images([LabelRow(str(camera["IMG_0001.jpg"]), "trip")], dest, "copy")
    assert result.already == [str(camera["IMG_0001.jpg"])] and not result.done


def test_a_changed_label_moves_the_file_between_classes_and_undoes_newest_first(tmp_path, camera):
    photo = str(camera["IMG_0001.jpg"])
    dest = tmp_path / "sorted"
    export_images([LabelRow(photo, "sky")], dest, "move")
    second = export_images([LabelRow(photo, "sunsets")], dest, "move")
    assert len(second.relabeled) == 1 and "1 moved between classes" in second.summary()
    assert _tree(dest) == {"sunsets/IMG_0001.jpg": b"sunset!!"}  # one copy, in the new class
    first_undo = undo_export(dest)
    assert _tree(dest) == {"sky/IMG_0001.jpg": b"sunset!!"}  # back in the earlier class
    assert first_undo.remaining == 1
    undo_export(dest)
    assert camera["IMG_0001.jpg"].read_bytes() == b"sunset!!" and _tree(dest) == {}


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_a_changed_label_is_reported_not_copied_again(tmp_path, camera, mode):
    photo = str(camera["IMG_0001.jpg"])
    dest = tmp_path / "sorted"
    export_images([LabelRow(photo, "sky")], dest, mode)
    second = export_images([LabelRow(photo, "sunsets")], dest, mode)
    assert second.done == [] and second.label_changed[0][0] == photo
    assert not (dest / "sunsets").exists() and "changed label" in second.summary()


def test_a_new_photo_under_an_exported_name_is_exported_as_a_new_image(tmp_path, camera):
    photo = camera["IMG_0001.jpg"]
    dest = tmp_path / "sorted"
    export_images([LabelRow(str(photo), "sky")], dest, "move")
    _photo(photo, b"birthday")
    second = export_images([LabelRow(str(photo), "sky")], dest, "move")
    assert len(second.done) == 1 and not photo.exists()
    assert _tree(dest) == {"sky/IMG_0001.jpg": b"sunset!!", "sky/IMG_0001 (1).jpg": b"birthday"}
    undo_export(dest, all_exports=True)
    assert photo.read_bytes() == b"birthday"  # the newest export came back; the older one is
    assert _tree(dest) == {"sky/IMG_0001.jpg": b"sunset!!"}  # refused, not lost


def test_two_exports_to_one_destination_undo_one_by_one_newest_first(tmp_path, camera):
    dest = tmp_path / "sorted"
    first, second = camera["IMG_0001.jpg"], camera["IMG_0002.jpg"]
    export_images([LabelRow(str(first), "a")], dest, "move")
    export_images([LabelRow(str(second), "b")], dest, "move")
    undo_export(dest)
    assert second.exists() and not first.exists() and _tree(dest) == {"a/IMG_0001.jpg": b"sunset!!"}
    undo_export(dest)
    assert first.exists() and _tree(dest) == {}


def test_undo_all_undoes_every_export(tmp_path, camera):
    dest = tmp_path / "sorted"
    for i, photo in enumerate(camera.values()):
        export_images([LabelRow(str(photo), f"c{i}")], dest, "move")
    result = undo_export(dest, all_exports=True)
    assert len(result.exports) == 2 and len(result.undone) == 2 and result.remaining == 0
    assert all(p.exists() for p in camera.values())


def _fail_writes(monkeypatch, error_number, after=1):
    """Make the copy's ``after``-th write (and every later one) raise OSError(error_number)."""
    calls = {"n": 0}
    real = export_files.write_all

    def failing(fd, data):
        calls["n"] += 1
        if calls["n"] >= after:
            raise OSError(error_number, os.strerror(error_number))
        real(fd, data)

    monkeypatch.setattr(export_files, "CHUNK", 4)
    monkeypatch.setattr(export_files, "write_all", failing)


@pytest.mark.parametrize("cross_device", [False, True])
def test_a_full_disk_stops_cleanly_and_loses_nothing(tmp_path, camera, monkeypatch, cross_device):
    if cross_device:
        monkeypatch.setattr(export_files, "hardlink", lambda src, dst: False)
    rows = [LabelRow(str(p), "trip") for p in camera.values()]
    dest = tmp_path / "sorted"
    _fail_writes(monkeypatch, errno.ENOSPC, after=3)  # the first photo fits, the second does not
    mode = "move" if cross_device else "copy"
    result = export_images(rows, dest, mode)
    assert "no space left" in result.stopped and len(result.done) == 1
    assert _tree(dest) == {"trip/IMG_0001.jpg": b"sunset!!"}  # complete files only, no temp
    assert camera["IMG_0002.jpg"].read_bytes() == b"mountain"
    monkeypatch.undo()
    again = export_images(rows, dest, mode)  # space freed: the rest follows, nothing twice
    assert len(again.done) == 1 and len(again.already) == 1
    undo_export(dest, all_exports=True)
    assert [p.read_bytes() for p in camera.values()] == [b"sunset!!", b"mountain"]
    assert _tree(dest) == {}


def test_a_failing_copy_leaves_no_partial_file(tmp_path, camera, monkeypatch):
    _fail_writes(monkeypatch, errno.EIO, after=2)
    result = export_images([LabelRow(str(camera["IMG_0001.jpg"]), "trip")], tmp_path / "s", "copy")
    assert result.failures and result.stopped is None
    assert _tree(tmp_path / "s") == {} and camera["IMG_0001.jpg"].read_bytes() == b"sunset!!"


def test_a_killed_export_is_settled_by_the_next_one(tmp_path, camera):
    """A crash mid-copy (journal 'begin', a half-written temp) and mid-move (linked, source not
    yet unlinked): the next export removes the temp and rolls the move back, then exports."""
    dest = tmp_path / "sorted"
    export_images([], dest, "copy")  # creates the journal
    photo = camera["IMG_0001.jpg"]
    half = _photo(dest / "trip" / ".IMG_0001.jpg.abc.tmp", b"sun")
    linked = dest / "trip" / "IMG_0002.jpg"
    os.link(camera["IMG_0002.jpg"], linked)
    ident1, ident2 = export_files.content_id(photo), export_files.content_id(linked)
    with open(dest / JOURNAL_NAME, "a") as journal:
        journal.write(json.dumps({"v": 2, "ev": "export", "id": "k", "mode": "copy"}) + "\n")
        for n, (op, src, dst, ident, tmp) in enumerate(
            [
                ("copy", photo, dest / "trip" / "IMG_0001.jpg", ident1, half),
                ("move", camera["IMG_0002.jpg"], linked, ident2, None),
            ]
        ):
            record = {"v": 2, "ev": "begin", "id": "k", "n": n, "op": op, "src": str(src)}
            record |= {"dst": str(dst), "origin": str(src), "hash": ident[0], "size": ident[1]}
            journal.write(json.dumps(record | {"tmp": str(tmp) if tmp else None}) + "\n")
    assert not undo_export(dest).exports  # settled: nothing of the killed export remains to undo
    assert _tree(dest) == {} and camera["IMG_0002.jpg"].read_bytes() == b"mountain"
    rows = [LabelRow(str(p), "trip") for p in camera.values()]
    assert len(export_images(rows, dest, "move").done) == 2
    assert _tree(dest) == {"trip/IMG_0001.jpg": b"sunset!!", "trip/IMG_0002.jpg": b"mountain"}


def test_a_torn_journal_line_is_skipped_and_a_busy_destination_is_refused(tmp_path, camera):
    from fewshot_gui.core.errors import UsageError
    from fewshot_gui.data.export_journal import Journal

    dest = tmp_path / "sorted"
    export_images([LabelRow(str(camera["IMG_0001.jpg"]), "sky")], dest, "move")
    with open(dest / JOURNAL_NAME, "a") as journal:
        journal.write('{"v": 2, "ev": "begin", "id": "x", "n"')  # a crash mid-record
    export_images([LabelRow(str(camera["IMG_0002.jpg"]), "hill")], dest, "move")
    with Journal.open(dest, create=False), pytest.raises(UsageError, match="another export"):
        undo_export(dest)  # another export or undo holds the journal
    assert undo_export(dest).undone  # the newest export, recorded after the torn line
    assert (
        camera["IMG_0002.jpg"].read_bytes() == b"mountain" and not camera["IMG_0001.jpg"].exists()
    )


def test_a_journal_that_cannot_be_written_stops_the_export_without_a_traceback(
    tmp_path, camera, monkeypatch
):
    from fewshot_gui.data.export_journal import Journal

    real, calls = Journal._write, {"n": 0}

    def full_after_two(self, data):
        calls["n"] += 1
        if calls["n"] > 2:  # the export record and the first 'begin' fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, data)

    monkeypatch.setattr(Journal, "_write", full_after_two)
    dest = tmp_path / "sorted"
    rows = [LabelRow(str(p), "trip") for p in camera.values()]
    assert "no space left" in export_images(rows, dest, "move").stopped
    monkeypatch.undo()
    undo_export(dest, all_exports=True)  # settles the operation whose outcome was not written
    assert [p.read_bytes() for p in camera.values()] == [b"sunset!!", b"mountain"]
    assert _tree(dest) == {}


def test_undo_of_a_copy_of_a_linked_image_removes_the_copy(tmp_path, camera):
    link = tmp_path / "album" / "best.jpg"
    link.parent.mkdir()
    link.symlink_to(camera["IMG_0001.jpg"])
    dest = tmp_path / "sorted"
    export_images([LabelRow(str(link), "sky")], dest, "copy")
    assert (dest / "sky" / "best.jpg").read_bytes() == b"sunset!!"
    assert len(undo_export(dest).undone) == 1 and _tree(dest) == {}
    moved = export_images([LabelRow(str(link), "sky")], dest, "move")
    assert "a link" in moved.failures[0][1] and link.is_symlink()  # a link is not moved
