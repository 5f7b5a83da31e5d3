"""``fewshot-gui label`` never clobbers: ``--out`` refusals and class-name refusals come before any
model work; every path found but not used is a CSV row (images) or a line (examples); formats such
as GTSRB's ``.ppm`` label."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from imagefactory import make_image
from PIL import Image, features

from fewshot_gui.cli import main
from fewshot_gui.core.csvcells import unescape_cell

REDS, BLUES = (220, 30, 30), (30, 40, 220)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    support, images = tmp_path / "support", tmp_path / "img"
    for name, color in (("reds", REDS), ("blues", BLUES)):
        make_image(support / name / "ex0.jpg", color=color)
    for i in range(3):
        make_image(images / f"q{i:05d}.jpg", color=REDS)
    make_image(images / "q00005.jpg")
    (images / "notes.txt").write_text("mine")
    return support, images


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the labeling session (the model) is ever constructed."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("model work started before the refusal")

    monkeypatch.setattr("fewshot_gui.session.LabelingSession", refuse)


def _label(support: Path, images: Path, out: Path | str, *extra: str) -> int:
    cache = support.parent / "cache"  # beside the inputs, in the test's own folder
    args = ["label", str(support), str(images), "--out", str(out), "--encoder", "conv4"]
    return main([*args, "--device", "cpu", "--cache-dir", str(cache), "--quiet", *extra])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("fewshot-gui: ")
    return lines[0]


OUT_REFUSALS = {
    "an input image": ("img/q00005.jpg", "inside the images folder"),
    "an example image": ("support/reds/ex0.jpg", "inside the support folder"),
    "a non-image file in the images folder": ("img/notes.txt", "inside the images folder"),
    "an existing document": ("report.docx", "an existing file"),
    "a spreadsheet that is not ours": ("data.csv", "an existing file"),
    "a folder": ("img", "is a folder"),
    "a link to an input image": ("link.csv", "inside the images folder"),
    "a folder that is a file": ("report.docx/labels.csv", "cannot create the folder"),
}


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("case", list(OUT_REFUSALS))
def test_out_refused_before_any_model_work(
    tmp_path: Path, folders, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    support, images = folders
    (tmp_path / "report.docx").write_bytes(os.urandom(300))
    (tmp_path / "data.csv").write_text("name,amount\nrent,900\n")
    os.symlink(images / "q00005.jpg", tmp_path / "link.csv")
    before = _digest(tmp_path)
    out, expected = OUT_REFUSALS[case]
    assert _label(support, images, tmp_path / out) == 2
    assert expected in _one_line_error(capsys)
    assert _digest(tmp_path) == before  # nothing written, nothing replaced
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.usefixtures("no_model")
def test_unwritable_out_folder_found_before_labeling(
    tmp_path: Path, folders, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    support, images = folders

    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("fewshot_gui.commands._output.tempfile.mkstemp", read_only)
    assert _label(support, images, tmp_path / "ro" / "labels.csv") == 2
    assert "cannot write --out in" in _one_line_error(capsys)


@pytest.mark.usefixtures("no_model")
def test_permission_denied_out_folder_for_real(
    tmp_path: Path, folders, capsys: pytest.CaptureFixture[str]
) -> None:
    support, images = folders
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user writes into any folder (root)")
        assert _label(support, images, locked / "labels.csv") == 2
        assert "permission denied" in _one_line_error(capsys)
    finally:
        locked.chmod(0o755)


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("name", ["unknown", "UNKNOWN"])
def test_class_named_unknown_is_refused(
    tmp_path: Path, folders, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    support, images = folders
    make_image(support / name / "x.jpg")
    assert _label(support, images, tmp_path / "labels.csv") == 2
    assert "is reserved for images that match no class" in _one_line_error(capsys)
    assert not (tmp_path / "labels.csv").exists()


def _rows(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, {cells[0]: dict(zip(header, cells, strict=True)) for cells in reader}


def _save(path: Path, image: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def test_gtsrb_like_ppm_folder_and_other_formats_label_and_skips_are_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    support, images = tmp_path / "Train", tmp_path / "Test"
    for cls, color in (("00000", REDS), ("=1+1", BLUES)):  # GTSRB class folders hold .ppm files
        for i in range(2):
            _save(support / cls / f"00000_0000{i}.ppm", Image.new("RGB", (30, 31), color))
    (support / "00002").mkdir()  # an empty class
    (support / "Readme.txt").write_text("GTSRB")
    expected = {}
    for i, fmt in enumerate(["ppm", "pgm", "pbm", "tga", "ico", "bmp", "qoi", "PPM"]):
        color = REDS if i % 2 == 0 else BLUES
        image = Image.new("RGB", (32, 32), color)
        if fmt in ("pgm", "pbm"):  # grey: decoded, but no colour left to label by
            image = image.convert("L" if fmt == "pgm" else "1")
        path = _save(images / "Images" / f"{i:05d}.{fmt}", image)
        expected[str(path)] = None if image.mode != "RGB" else "00000" if color == REDS else "=1+1"
    deep = np.full((20, 20), 1000, np.uint16)
    expected[str(_save(images / "deep.pgm", Image.fromarray(deep)))] = None  # 16-bit PGM
    if features.check("jpg_2000"):
        expected[str(_save(images / "red.jp2", Image.new("RGB", (32, 32), REDS)))] = "00000"
    os.mkfifo(images / "pipe.ppm")
    os.symlink(images / "gone.ppm", images / "broken.ppm")
    os.symlink(os.devnull, images / "device.ppm")
    (images / "GT-final_test.csv").write_text("Filename;ClassId\n")
    make_image(images / ".hidden.ppm")
    out = images / "labels.csv"  # our own CSV may live in the images folder
    before = _digest(tmp_path)

    assert _label(support, images, out) == 0
    err = capsys.readouterr().err
    assert "class '00002' has no readable example image: skipped" in err
    assert "Readme.txt (not a class folder)" in err
    header, rows = _rows(out)
    assert [unescape_cell(c) for c in header[4:-1]] == ["00000", "=1+1"]
    assert not any(cell.startswith("=") for cell in header)  # no formula in a spreadsheet
    for path, label in expected.items():
        assert rows[path]["error"] == "", rows[path]
        if label is not None:
            assert unescape_cell(rows[path]["label"]) == label, path
    assert rows[str(images / "pipe.ppm")]["error"] == "a named pipe (FIFO), not an image file"
    assert rows[str(images / "broken.ppm")]["error"] == "broken link (its target does not exist)"
    assert rows[str(images / "device.ppm")]["error"] == "a device, not an image file"
    assert rows[str(images / "GT-final_test.csv")]["error"] == "not an image format (.csv)"
    assert set(rows) == {*expected, *(str(images / n) for n in ("pipe.ppm", "broken.ppm"))} | {
        str(images / "device.ppm"),
        str(images / "GT-final_test.csv"),
    }  # the hidden file is counted, not a row; our own labels.csv is not a row

    assert _label(support, images, out) == 0  # our own CSV in the images folder is replaced
    assert _rows(out)[1].keys() == rows.keys()
    after = _digest(tmp_path)
    after.pop(str(out))
    assert {p: h for p, h in after.items() if not p.startswith(str(tmp_path / "cache"))} == before
