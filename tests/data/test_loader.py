"""Batches: order, indices, failures in place, content, prefetch bound, early stop, no writes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot_gui.core.errors import DecodeError
from fewshot_gui.core.types import FileFailure
from fewshot_gui.data import loader
from fewshot_gui.data.decode import load_image_rgb
from fewshot_gui.data.folder import scan_folder
from fewshot_gui.data.loader import Batch, iter_batches
from fewshot_gui.data.preprocess import Preprocessing

PRE = Preprocessing(resize=36, crop=32)


def _mixed_folder(root: Path, make_image) -> list[str]:
    """Eleven files: good images of several kinds with failures at 2, 5 and 6 (sorted order)."""
    files = [
        make_image(root / "00.jpg", size=(90, 60), color=(250, 0, 0)),
        make_image(root / "01.png", color=(0, 250, 0), mode="P"),
        root / "02.jpg",  # empty
        make_image(root / "03.gif", color=(0, 0, 250)),
        make_image(root / "04.png", mode="I;16"),
        root / "05.png",  # text
        root / "06.jpg",  # truncated lazy JPEG: fails only while decoding in the worker
        make_image(root / "07.webp", color=(20, 120, 220)),
        make_image(root / "08.jpeg", size=(300, 200), color=(120, 20, 220)),
        make_image(root / "09.bmp", mode="L"),
        make_image(root / "10.tif", mode="CMYK"),
    ]
    (root / "02.jpg").write_bytes(b"")
    (root / "05.png").write_text("plain text")
    data = make_image(root / "ok.jpg", size=(200, 150)).read_bytes()
    (root / "ok.jpg").unlink()
    (root / "06.jpg").write_bytes(data[: len(data) // 2])
    return [str(f) for f in files]


FAILING = {2: "empty file", 5: "not an image file", 6: "truncated"}


@pytest.mark.parametrize("num_workers", [0, 1, 3])
@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_every_record_once_in_order(tmp_path: Path, make_image, num_workers, batch_size) -> None:
    paths = _mixed_folder(tmp_path, make_image)
    batches = list(iter_batches(paths, PRE, batch_size, num_workers))
    assert [len(b) for b in batches] == [
        min(batch_size, len(paths) - s) for s in range(0, len(paths), batch_size)
    ]
    seen: list[int] = []
    for batch in batches:
        assert batch.images.dtype == torch.uint8
        assert batch.images.shape == (len(batch.indices), 3, 32, 32)
        assert batch.indices == sorted(batch.indices)
        seen += batch.indices + [i for i, _ in batch.failures]
        for index, failure in batch.failures:
            assert isinstance(failure, FileFailure) and failure.path == paths[index]
            assert FAILING[index] in failure.reason
    assert sorted(seen) == list(range(len(paths)))
    assert {i for b in batches for i, _ in b.failures} == set(FAILING)


def test_content_matches_single_image_preprocessing(tmp_path: Path, make_image) -> None:
    paths = _mixed_folder(tmp_path, make_image)
    for batch in iter_batches(paths, PRE, 4, 2):
        for row, index in enumerate(batch.indices):
            expected = PRE.to_uint8(load_image_rgb(paths[index]))
            got = batch.images[row].numpy()
            if paths[index].endswith((".jpg", ".jpeg")):  # lazy JPEGs may use draft mode
                assert np.abs(got.astype(int) - expected).mean() < 3
            else:
                assert np.array_equal(got, expected), paths[index]


def test_big_jpeg_uses_draft_mode_and_matches(tmp_path: Path, make_image) -> None:
    path = make_image(tmp_path / "big.jpg", size=(1200, 900), color=(10, 200, 30))
    (batch,) = iter_batches([path], Preprocessing(resize=64, crop=64), 1, 0)
    assert np.abs(batch.images[0, :, 40, 40].numpy().astype(int) - (10, 200, 30)).max() <= 4


def test_records_and_grayscale_preprocessing(tmp_path: Path, make_image) -> None:
    for i in range(5):
        make_image(tmp_path / f"{i}.png", color=(60 * i, 60 * i, 60 * i))
    records = scan_folder(tmp_path)
    grey = Preprocessing(resize=20, crop=16, mean=(0.5,), std=(0.5,), channels=1)
    batches = list(iter_batches(records, grey, 2, 2))
    images = torch.cat([b.images for b in batches])
    assert images.shape == (5, 1, 16, 16)
    assert images[:, 0, 12, 12].tolist() == [0, 60, 120, 180, 240]


def test_all_failing_batch_is_empty_tensor(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.png"):
        (tmp_path / name).write_bytes(b"")
    (batch,) = iter_batches([tmp_path / "a.jpg", tmp_path / "b.png"], PRE, 8, 2)
    assert batch.indices == [] and batch.images.shape == (0, 3, 32, 32)
    assert [i for i, _ in batch.failures] == [0, 1]


def test_empty_input_and_bad_batch_size() -> None:
    assert list(iter_batches([], PRE, 4, 2)) == []
    with pytest.raises(ValueError):
        next(iter_batches(["x.png"], PRE, 0, 2))


def test_prefetch_is_bounded_and_break_stops_workers(
    tmp_path: Path, make_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(make_image(tmp_path / "a.png"))
    started: list[int] = []
    lock = threading.Lock()
    real = loader.decode_one

    def slow_decode(p, preprocessing, max_pixels):
        with lock:
            started.append(1)
        time.sleep(0.01)
        return real(p, preprocessing, max_pixels)

    monkeypatch.setattr(loader, "decode_one", slow_decode)
    batches = iter_batches([path] * 400, PRE, 4, 2, prefetch=2)
    first = next(batches)
    assert isinstance(first, Batch) and len(first.indices) == 4
    time.sleep(0.2)  # give the workers time to run ahead as far as they are allowed
    assert len(started) <= 4 * (1 + 2), "decoding ran further ahead than `prefetch` batches"
    batches.close()  # what breaking out of a for loop does
    stopped_at = len(started)
    time.sleep(0.1)
    assert len(started) == stopped_at, "workers kept decoding after the consumer stopped"
    assert not [t for t in threading.enumerate() if t.name.startswith("fewshot-decode")]


def test_break_out_of_loop_cleans_up(tmp_path: Path, make_image) -> None:
    path = make_image(tmp_path / "a.png")
    for batch in iter_batches([path] * 200, PRE, 2, 2):
        assert len(batch.indices) == 2
        break
    time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name.startswith("fewshot-decode")]


def test_pin_memory_is_harmless_without_cuda(tmp_path: Path, make_image) -> None:
    path = make_image(tmp_path / "a.png")
    (batch,) = iter_batches([path], PRE, 2, 1, pin_memory=True)
    assert batch.images.shape == (1, 3, 32, 32)
    assert batch.images.is_pinned() == torch.cuda.is_available()


def test_bad_folder_loads_without_changing_any_file(bad_folder) -> None:
    before = bad_folder.snapshot()
    records = scan_folder(bad_folder.root)
    assert [r.path for r in records] == bad_folder.scanned
    reasons: dict[str, str] = {}
    good: set[str] = set()
    for batch in iter_batches(records, PRE, 5, 2):
        good |= {records[i].path for i in batch.indices}
        reasons |= {f.path: f.reason for _, f in batch.failures}
    assert good == set(bad_folder.valid)
    assert set(reasons) == set(bad_folder.invalid)
    for path, expected in bad_folder.invalid.items():
        assert expected in reasons[path], (path, reasons[path])
    assert bad_folder.snapshot() == before


def test_load_uint8_raises_decode_error_for_lazy_truncated_jpeg(tmp_path: Path, make_image) -> None:
    data = make_image(tmp_path / "ok.jpg", size=(200, 150)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="truncated"):
        loader.load_uint8(tmp_path / "cut.jpg", PRE)
    assert loader.load_uint8(tmp_path / "ok.jpg", PRE).shape == (3, 32, 32)
