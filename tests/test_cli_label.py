"""``fewshot-gui label`` end to end, including every kind of bad input (no input file changes)."""

from __future__ import annotations

import csv
import shutil

import pytest
from imagefactory import build_bad_folder, make_image

from fewshot_gui.cli import main


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def support(tmp_path):
    root = tmp_path / "support"
    for name, color in {"reds": (220, 30, 30), "blues": (30, 40, 220)}.items():
        for i in range(2):
            make_image(root / name / f"ex{i}.jpg", color=color)
    (root / "empty class").mkdir()
    return root


def test_label_bad_folder_completes_and_changes_nothing(tmp_path, support, capsys):
    bad = build_bad_folder(tmp_path / "bad input")
    before = bad.snapshot()
    out = tmp_path / "labels.csv"
    code = main(
        [
            "label",
            str(support),
            str(bad.root),
            "--out",
            str(out),
            "--encoder",
            "conv4",
            "--device",
            "cpu",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    rows = {row["path"]: row for row in _rows(out)}
    not_images = {str(bad.root / "notes.txt"), str(bad.root / "image.jpg.bak")}
    assert set(rows) == {str(p) for p in bad.scanned} | not_images  # one row per file found
    for path in not_images:
        assert rows[path]["error"].startswith("not an image format") and rows[path]["label"] == ""
    with open(out, encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["path", "label", "confidence", "error", "blues", "reds", "unknown_score"]
    for path in bad.valid:
        row = rows[str(path)]
        assert row["error"] == "" and row["label"] in ("reds", "blues"), row
        assert 0 < float(row["confidence"]) <= 1
        assert 0 <= float(row["unknown_score"]) <= 1  # always written for a labeled image
    for path, reason in bad.invalid.items():
        row = rows[str(path)]
        assert reason.lower() in row["error"].lower(), (path, row["error"])
        assert row["label"] == ""
    assert bad.snapshot() == before
    assert "failed" in capsys.readouterr().err


def test_label_exit_codes_for_unusable_input(tmp_path, support, capsys):
    images = tmp_path / "images"
    make_image(images / "a.png")
    assert main(["label", str(tmp_path / "nope"), str(images), "--encoder", "conv4"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["label", str(support), str(tmp_path / "missing"), "--encoder", "conv4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    unreadable = tmp_path / "unreadable"
    (unreadable / "a").mkdir(parents=True)
    (unreadable / "a" / "x.jpg").write_bytes(b"junk")
    code = main(
        [
            "label",
            str(unreadable),
            str(images),
            "--encoder",
            "conv4",
            "--device",
            "cpu",
            "--cache-dir",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2
    assert "readable example" in capsys.readouterr().err


def test_label_twice_uses_the_cache_and_writes_probabilities(tmp_path, support, capsys):
    images = tmp_path / "images"
    for i in range(3):
        make_image(images / f"r{i}.png", color=(210, 40, 30))
        make_image(images / "sub" / f"b{i}.png", color=(40, 30, 210))
    args = [
        "label",
        str(support),
        str(images),
        "--encoder",
        "conv4",
        "--device",
        "cpu",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "l.csv"),
    ]
    assert main(args) == 0
    assert "(10 embedded" in capsys.readouterr().err  # 4 examples + 6 images
    first = _rows(tmp_path / "l.csv")
    assert main(args) == 0
    assert "(0 embedded" in capsys.readouterr().err
    rows = _rows(tmp_path / "l.csv")
    assert rows == first  # cached embeddings give exactly the same labels and probabilities
    assert [r["label"] for r in rows] == ["reds"] * 3 + ["blues"] * 3
    for row in rows:
        assert abs(float(row["reds"]) + float(row["blues"]) - 1) < 1e-4
    shutil.rmtree(tmp_path / "cache")
