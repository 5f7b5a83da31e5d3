"""The one labels file: what `label` and the app write is what `export` reads back, escaped
against spreadsheet formulas, with unusable files refused in one line."""

from __future__ import annotations

import csv
import os

import pytest

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.labels_csv import LabelRow, read_labels, write_labels


def _rows(tmp_path):
    return [
        LabelRow(str(tmp_path / "a.jpg"), "=1+1", 0.75, probabilities=(0.75, 0.25)),
        LabelRow(str(tmp_path / "b.jpg"), "@SUM(A1)", 0.5, probabilities=(0.5, 0.5)),
        LabelRow(str(tmp_path / "c.jpg"), "", None, error="-not an image"),
    ]


def test_csv_round_trip_escapes_formulas_and_reads_back_exactly(tmp_path):
    path = write_labels(tmp_path / "labels.csv", _rows(tmp_path), ["=1+1", "@SUM(A1)"])
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0][:6] == ["path", "label", "confidence", "error", "'=1+1", "'@SUM(A1)"]
    assert table[1][1] == "'=1+1" and table[3][3] == "'-not an image" and table[3][4:6] == ["", ""]
    back = read_labels(path)
    assert back.classes == ["=1+1", "@SUM(A1)"]
    assert back.rows == _rows(tmp_path)


def test_source_column_and_a_class_called_source(tmp_path):
    rows = [LabelRow(str(tmp_path / "a.jpg"), "cat", 1.0, "user")]
    assert read_labels(write_labels(tmp_path / "app.csv", rows, source=True)).rows == rows
    probs = [LabelRow(str(tmp_path / "a.jpg"), "source", 0.9, probabilities=(0.9, 0.1))]
    table = read_labels(write_labels(tmp_path / "label.csv", probs, ["source", "sink"]))
    assert table.classes == ["source", "sink"] and table.rows == probs


def test_json_round_trip(tmp_path):
    rows = _rows(tmp_path)
    back = read_labels(write_labels(tmp_path / "labels.json", rows, ["=1+1", "@SUM(A1)"]))
    assert back.rows == rows and back.classes == ["=1+1", "@SUM(A1)"]


def test_relative_paths_are_taken_from_the_file_folder_and_odd_names_survive(tmp_path):
    odd = os.fsdecode(b'caf\xe9, "quoted"\nname.jpg')  # not UTF-8, a comma, a quote, a newline
    (tmp_path / "labels.csv").write_text("path,label\nsub/x.jpg,cat\n", encoding="utf-8")
    assert read_labels(tmp_path / "labels.csv").rows[0].path == str(tmp_path / "sub" / "x.jpg")
    rows = [LabelRow(str(tmp_path / odd), "cat")]
    assert read_labels(write_labels(tmp_path / "odd.csv", rows)).rows == rows


@pytest.mark.parametrize(
    "content",
    [None, b"", b"name,class\nx,y\n", b"\xff\xfe\x00garbage", b'{"not": "a list"}'],
)
def test_unusable_files_are_one_plain_error(tmp_path, content):
    path = tmp_path / ("labels.json" if content and content.startswith(b"{") else "labels.csv")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match="labels"):
        read_labels(path)
