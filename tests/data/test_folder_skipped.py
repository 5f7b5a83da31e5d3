"""Folder scans say what they found but did not use: each such path with a plain reason."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from fewshot_gui.data.folder import scan, scan_classes, scan_folder

needs_posix = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and links: POSIX")


def _reasons(found, root: Path) -> dict[str, str]:
    return {os.path.relpath(f.path, root): f.reason for f in found.skipped}


@needs_posix
def test_every_unused_path_has_a_reason(tmp_path: Path, make_image) -> None:
    make_image(tmp_path / "ok.png")
    make_image(tmp_path / "sub" / "ok.ppm")
    os.mkfifo(tmp_path / "pipe.jpg")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "broken.jpg")
    os.symlink("loop.png", tmp_path / "loop.png")
    os.symlink(os.devnull, tmp_path / "device.png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "README").write_text("x")
    (tmp_path / "photo.jpg.bak").write_bytes(b"x")
    make_image(tmp_path / ".hidden.png")
    make_image(tmp_path / ".git" / "inside.png")
    make_image(tmp_path / "sub" / "._resource.jpg")
    found = scan(tmp_path)
    assert [os.path.relpath(r.path, tmp_path) for r in found.records] == ["ok.png", "sub/ok.ppm"]
    assert _reasons(found, tmp_path) == {
        "pipe.jpg": "a named pipe (FIFO), not an image file",
        "broken.jpg": "broken link (its target does not exist)",
        "loop.png": "link loop (the link leads back to itself)",
        "device.png": "a device, not an image file",
        "notes.txt": "not an image format (.txt)",
        "README": "not an image format (no file extension)",
        "photo.jpg.bak": "not an image format (.bak)",
    }
    assert found.hidden == 3  # .hidden.png, .git (not entered), sub/._resource.jpg
    assert [f.path for f in found.skipped] == sorted(f.path for f in found.skipped)
    assert scan_folder(tmp_path) == found.records


@needs_posix
def test_socket_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.png"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    except OSError as error:  # a path too long for AF_UNIX on some systems
        pytest.skip(f"cannot bind a socket here: {error}")
    try:
        assert _reasons(scan(tmp_path), tmp_path) == {"s.png": "a socket, not an image file"}
    finally:
        server.close()


@pytest.mark.usefixtures("locked")
def test_unreadable_subfolder_is_a_row(tmp_path: Path, make_image) -> None:
    make_image(tmp_path / "ok.png")
    make_image(tmp_path / "locked" / "a.png")
    found = scan(tmp_path)
    assert len(found.records) == 1
    assert _reasons(found, tmp_path) == {"locked": "folder cannot be read (permission denied)"}


def _reads_anyway(folder: Path) -> bool:
    """True when this process reads a mode-000 folder (root, or CAP_DAC_OVERRIDE)."""
    try:
        with os.scandir(folder):
            return True
    except PermissionError:
        return False


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_chmod_000_subfolder_for_real(tmp_path: Path, make_image) -> None:
    make_image(tmp_path / "locked" / "a.png")
    os.chmod(tmp_path / "locked", 0)
    if _reads_anyway(tmp_path / "locked"):
        os.chmod(tmp_path / "locked", 0o755)
        pytest.skip("this user reads any folder (root)")
    try:
        found = scan(tmp_path)
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert found.records == []
    assert _reasons(found, tmp_path) == {"locked": "folder cannot be read (permission denied)"}


@needs_posix
@pytest.mark.usefixtures("locked")
def test_class_scan_reports_loose_files_and_empty_classes(tmp_path: Path, make_image) -> None:
    make_image(tmp_path / "cat" / "c.png")
    make_image(tmp_path / "cat" / ".thumb.png")
    (tmp_path / "cat" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    make_image(tmp_path / "locked" / "l.png")
    make_image(tmp_path / "loose.png")
    (tmp_path / "README.txt").write_text("x")
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "gone", tmp_path / "broken class")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    found = scan_classes(tmp_path)
    assert {n: len(rs) for n, rs in found.classes.items()} == {"cat": 1, "empty": 0, "locked": 0}
    assert _reasons(found, tmp_path) == {
        "cat/notes.txt": "not an image format (.txt)",
        "locked": "folder cannot be read (permission denied)",
        "loose.png": "an image outside the class folders (put it in a class's folder)",
        "README.txt": "not a class folder",
        "pipe": "a named pipe (FIFO), not an image file",
        "broken class": "broken link (its target does not exist)",
    }
    assert found.hidden == 2
