"""The cluster engine's files without Ray: image sources, result shards, the reader, refusals."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from imagefactory import make_image

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from fewshot_gui.cli import main  # noqa: E402
from fewshot_gui.cluster.result import LabelingResult  # noqa: E402
from fewshot_gui.cluster.shards import (  # noqa: E402
    ResultFolder,
    RunInfo,
    ShardWriter,
    failure_rows,
    rows_table,
)
from fewshot_gui.cluster.source import open_source  # noqa: E402
from fewshot_gui.core.errors import UsageError  # noqa: E402


def test_a_folder_a_file_uri_and_lists_of_paths(tmp_path):
    a = make_image(tmp_path / "imgs" / "a.jpg")
    b = make_image(tmp_path / "imgs" / "sub" / "b.png")
    (tmp_path / "imgs" / "notes.txt").write_text("x")
    folder = open_source(str(tmp_path / "imgs"))
    assert folder.paths == [str(a), str(b)] and folder.kind == "folder"
    assert [f.path for f in folder.skipped] == [str(tmp_path / "imgs" / "notes.txt")]
    assert open_source((tmp_path / "imgs").as_uri()).paths == folder.paths
    listing = tmp_path / "list.txt"
    listing.write_text(f"# photos\nimgs/a.jpg\n\n{b}\nimgs/a.jpg\n{tmp_path}/missing.jpg\n")
    assert open_source(str(listing)).paths == [str(a), str(b), str(tmp_path / "missing.jpg")]
    (tmp_path / "list.csv").write_text(f"id,path\n1,{a.as_uri()}\n2,imgs/sub/b.png\n")
    assert open_source(str(tmp_path / "list.csv")).paths == [str(a), str(b)]
    pq.write_table(pa.table({"path": [str(b), "imgs/a.jpg"]}), tmp_path / "list.parquet")
    assert open_source(str(tmp_path / "list.parquet")).paths == [str(b), str(a)]
    with pytest.raises(UsageError, match="neither a folder nor a list"):
        open_source(str(a))
    (tmp_path / "nopath.csv").write_text("file\nx.jpg\n")
    with pytest.raises(UsageError, match="no 'path' column"):
        open_source(str(tmp_path / "nopath.csv"))


def _info(fingerprint: str = "f1", classes=("cats", "dogs")) -> RunInfo:
    return RunInfo(list(classes), "conv4", "id", "metric", "metric", 4, True, fingerprint)


def _rows(paths, label="cats"):
    n = len(paths)
    columns = {
        "path": paths,
        "label": [label] * n,
        "confidence": np.full(n, 0.75),
        "unknown_score": np.full(n, np.nan),
        "error": [""] * n,
        "probabilities": np.tile([0.75, 0.25], (n, 1)),
        "embedding": np.ones((n, 4)),
    }
    return rows_table(columns, ["cats", "dogs"], 4)


def test_shards_resume_skip_done_paths_and_survive_damage(tmp_path):
    folder = ResultFolder(tmp_path / "out")
    assert folder.begin(_info(), np.zeros((0, 4)), None) is False
    (folder.shards / ".part-x.parquet.abc.tmp").write_bytes(b"half a shard")  # a killed write
    writer = ShardWriter(folder, rows=2)
    writer.add(_rows(["/p/1.jpg", "/p/2.jpg"]))
    writer.add(failure_rows(["/p/3.jpg"], ["empty file"], ["cats", "dogs"], 4))
    writer.flush()
    assert writer.written == 3 and len(folder.shard_files()) == 2
    assert folder.begin(_info(), np.zeros((0, 4)), None) is True  # resumed: temp file removed
    assert not [p for p in folder.shards.iterdir() if p.name.endswith(".tmp")]
    done = folder.done_paths()
    assert folder.not_done(["/p/0.jpg", "/p/2.jpg", "/p/3.jpg", "/p/4.jpg"], done) == [
        "/p/0.jpg",
        "/p/4.jpg",
    ]
    folder.shard_files()[0].write_bytes(b"garbage")
    warnings: list[str] = []
    assert folder.done_paths(warnings).to_pylist() == ["/p/3.jpg"]
    assert len(warnings) == 1 and len(list(folder.shards.glob("*.damaged"))) == 1
    with pytest.raises(UsageError, match="other examples or settings"):
        folder.begin(_info("another run"), np.zeros((0, 4)), None)


def test_reader_sorts_by_path_and_keeps_the_newest_row_of_a_path(tmp_path):
    folder = ResultFolder(tmp_path / "out")
    folder.begin(_info(), np.zeros((0, 4)), None)
    writer = ShardWriter(folder, rows=1)
    writer.add(_rows(["/p/b.jpg", "/p/a.jpg"], "cats"))
    writer.add(_rows(["/p/b.jpg"], "dogs"))
    writer.add(failure_rows(["/p/c.jpg"], ["empty file"], ["cats", "dogs"], 4))
    result = LabelingResult.open(folder.root)
    assert list(result.paths) == ["/p/a.jpg", "/p/b.jpg", "/p/c.jpg"]
    assert list(result.labels) == ["cats", "dogs", ""]
    assert result.failed_mask().tolist() == [False, False, True]
    assert result.embeddings().shape == (3, 4) and result.embeddings().dtype == np.float16
    assert result.label_counts() == {"cats": 1, "dogs": 1}
    assert [f.reason for f in result.failures()] == ["empty file"]
    with pytest.raises(UsageError, match="not a labeling result"):
        LabelingResult.open(tmp_path)


@pytest.fixture
def support(tmp_path):
    for name in ("reds", "blues"):
        make_image(tmp_path / "support" / name / "ex.jpg")
    make_image(tmp_path / "images" / "one.jpg")
    return tmp_path


def _label(root, *extra):
    return main(["label", str(root / "support"), str(root / "images"), "--engine", "ray", *extra])


def test_ray_engine_without_ray_is_one_line_and_exit_2(support, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    assert _label(support, "--out", str(support / "out")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Ray" in err[0] and "fewshot-gui[cluster]" in err[0]


def test_ray_engine_refuses_an_out_that_is_not_a_result(support, capsys):
    pytest.importorskip("ray")
    (support / "taken.csv").write_text("hello")
    assert _label(support, "--out", str(support / "taken.csv")) == 2
    (support / "mine").mkdir()
    (support / "mine" / "thesis.tex").write_text("keep me")
    assert _label(support, "--out", str(support / "mine")) == 2
    missing = ["label", str(support / "support"), str(support / "nope"), "--engine", "ray"]
    assert main([*missing, "--out", str(support / "out")]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "holds other files" in err and "folder not found" in err
    assert not (support / "out").exists()  # nothing written for an unusable input
    assert (support / "mine" / "thesis.tex").read_text() == "keep me"
