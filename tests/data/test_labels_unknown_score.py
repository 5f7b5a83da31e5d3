"""The labels file always carries ``unknown_score`` (last column), and reads it back."""

from __future__ import annotations

import csv

from fewshot_gui.data.labels_csv import LabelRow, read_labels, write_labels


def test_unknown_score_is_always_the_last_column_and_round_trips(tmp_path):
    rows = [
        LabelRow(str(tmp_path / "a.jpg"), "cat", 0.9, probabilities=(0.9, 0.1), unknown_score=0.25),
        LabelRow(str(tmp_path / "b.jpg"), "", None, error="not an image"),  # no score
    ]
    path = write_labels(tmp_path / "labels.csv", rows, ["cat", "unknown_score"])
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == [
        "path",
        "label",
        "confidence",
        "error",
        "cat",
        "unknown_score",
        "unknown_score",
    ]
    assert table[1][-1] == "0.250000" and table[2][-1] == ""
    back = read_labels(path)
    assert back.classes == ["cat", "unknown_score"]  # a class may have that name too
    assert back.rows == rows


def test_without_scores_the_column_is_still_written_and_older_files_still_read(tmp_path):
    plain = [LabelRow(str(tmp_path / "a.jpg"), "cat", 1.0, "user")]
    path = write_labels(tmp_path / "labels.csv", plain, source=True)
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["path", "label", "confidence", "error", "source", "unknown_score"]
    older = tmp_path / "old.csv"
    older.write_text(f"path,label,confidence,error,cat\n{tmp_path / 'a.jpg'},cat,0.9,,0.9\n")
    table = read_labels(older)
    assert table.classes == ["cat"] and table.rows[0].unknown_score is None


def test_json_has_the_score(tmp_path):
    rows = [LabelRow(str(tmp_path / "a.jpg"), "cat", 0.9, unknown_score=0.97)]
    back = read_labels(write_labels(tmp_path / "labels.json", rows))
    assert back.rows[0].unknown_score == 0.97
