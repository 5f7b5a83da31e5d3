"""Folder scans: extensions, hidden files, symlinks, order, odd names, class folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.folder import IMAGE_EXTENSIONS, scan_class_folders, scan_folder


def _names(records, root: Path) -> list[str]:
    return [os.path.relpath(r.path, root) for r in records]


def test_extensions_any_case_and_non_images_ignored(tmp_path: Path) -> None:
    for ext in sorted(IMAGE_EXTENSIONS):
        (tmp_path / f"lower{ext}").write_bytes(b"x")
        (tmp_path / f"upper{ext.upper()}").write_bytes(b"x")
    (tmp_path / "mixed.JpEg").write_bytes(b"x")
    for name in ("notes.txt", "raw.cr2", "photo.jpg.bak", "jpg", "archive.zip", "noext"):
        (tmp_path / name).write_bytes(b"x")
    found = _names(scan_folder(tmp_path), tmp_path)
    assert len(found) == 2 * len(IMAGE_EXTENSIONS) + 1
    assert "mixed.JpEg" in found
    assert not {"notes.txt", "raw.cr2", "photo.jpg.bak", "jpg", "archive.zip"} & set(found)


def test_records_are_absolute_with_size_and_mtime(
    tmp_path: Path, make_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_image(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    (record,) = scan_folder(".")
    assert record.path == str(path)
    assert os.path.isabs(record.path)
    assert record.size == path.stat().st_size
    assert record.mtime_ns == path.stat().st_mtime_ns


def test_recursive_sorted_stable_and_hidden_skipped(tmp_path: Path) -> None:
    names = ["b.png", "a.png", "sub/z.jpg", "sub/deeper/y.gif", "a dir/x.bmp", "B.PNG"]
    hidden = [".hidden.png", ".git/objects/x.png", "sub/.cache/t.jpg", "sub/.h.jpg"]
    for name in names + hidden:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    first = scan_folder(tmp_path)
    assert _names(first, tmp_path) == sorted(names, key=lambda n: str(tmp_path / n))
    assert scan_folder(tmp_path) == first  # same order every time


def test_odd_and_unicode_names(tmp_path: Path) -> None:
    names = [
        "café.png",
        "日本.jpg",
        "emoji 🌸.webp",
        "sp ace #1.png",
        "a,b'c\"d.tif",
        "-x.gif",
        "100%.bmp",
        "tab\tname.png",
        "ünï/çødé.jpeg",
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert sorted(_names(scan_folder(tmp_path), tmp_path)) == sorted(names)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_symlink_loops_terminate_and_links_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "img.png").write_bytes(b"x")
    os.symlink(root, root / "a" / "b" / "up")  # loop to the root
    os.symlink("..", root / "a" / "b" / "parent")  # relative loop
    os.symlink(root / "a" / "b" / "missing", root / "broken.png")  # dangling link
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.jpg").write_bytes(b"x")
    os.symlink(outside, root / "linked dir")  # a link to a folder elsewhere is followed
    os.symlink(outside / "o.jpg", root / "linked file.jpg")
    found = _names(scan_folder(root), root)
    assert found == ["a/b/img.png", "linked dir/o.jpg", "linked file.jpg"]


def test_usage_errors_for_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="folder not found"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UsageError, match="not a folder"):
        scan_folder(tmp_path / "file.png")
    with pytest.raises(UsageError, match="not a folder"):
        scan_class_folders(tmp_path / "file.png")


@pytest.mark.usefixtures("locked")
def test_unreadable_root_and_subfolder(tmp_path: Path) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.png").write_bytes(b"x")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.png").write_bytes(b"x")
    assert _names(scan_folder(tmp_path), tmp_path) == ["ok/a.png"]
    with pytest.raises(UsageError, match="permission denied"):
        scan_folder(tmp_path / "locked")


def test_class_folders(tmp_path: Path) -> None:
    for name in (
        "dog/d1.jpg",
        "dog/more/d2.png",
        "cat/c1.png",
        "empty/readme.txt",
        ".hid/x.png",
        "loose.png",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "nothing").mkdir()
    classes = scan_class_folders(tmp_path)
    assert list(classes) == ["cat", "dog", "empty", "nothing"]
    assert _names(classes["dog"], tmp_path) == ["dog/d1.jpg", "dog/more/d2.png"]
    assert classes["empty"] == [] and classes["nothing"] == []


def test_class_folder_symlink_back_to_root_does_not_loop(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "c.png").write_bytes(b"x")
    os.symlink(tmp_path, tmp_path / "cat" / "loop")
    assert _names(scan_class_folders(tmp_path)["cat"], tmp_path) == ["cat/c.png"]
