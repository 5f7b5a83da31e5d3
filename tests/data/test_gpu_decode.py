"""The device JPEG path (run here on the CPU: same torchvision API as on CUDA) against the PIL path."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fewshot_gui.data import gpu_decode, read_processes
from fewshot_gui.data.gpu_decode import iter_batches_on_device
from fewshot_gui.data.jpeg_header import jpeg_info, read_bytes
from fewshot_gui.data.loader import iter_batches
from fewshot_gui.data.preprocess import Preprocessing

PRE = Preprocessing(resize=36, crop=32)


def _photo(path: Path, size=(120, 90), seed=0, **save) -> Path:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save)
    return path


def _folder(root: Path) -> list[str]:
    """Good JPEGs of two sizes, a PNG, an EXIF-rotated JPEG, a truncated and a garbage one."""
    paths = [
        _photo(root / "00.jpg", seed=1),
        _photo(root / "01.jpg", size=(90, 120), seed=2),
        _photo(root / "02.png", seed=3),
        root / "03.jpg",  # truncated
        _photo(root / "04.jpg", seed=4),
        root / "05.jpg",  # not an image
        _photo(root / "06.jpg", size=(200, 100), seed=5),
    ]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: the device path must leave it to PIL
    paths.append(_photo(root / "07.jpg", seed=6, exif=exif.tobytes()))
    data = _photo(root / "tmp.jpg", seed=7).read_bytes()
    (root / "tmp.jpg").unlink()
    paths[3].write_bytes(data[: len(data) // 2])
    paths[5].write_text("not a jpeg")
    return [str(p) for p in paths]


def test_jpeg_info_reads_size_components_and_orientation(tmp_path: Path) -> None:
    info = jpeg_info(_photo(tmp_path / "a.jpg", size=(123, 45)).read_bytes())
    assert (info.width, info.height, info.components, info.orientation) == (123, 45, 3, 1)
    exif = Image.Exif()
    exif[0x0112] = 8
    rotated = jpeg_info(_photo(tmp_path / "b.jpg", exif=exif.tobytes()).read_bytes())
    assert rotated.orientation == 8
    assert jpeg_info(_photo(tmp_path / "c.png").read_bytes()) is None
    assert jpeg_info(b"\xff\xd8\xff") is None


NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


@pytest.mark.parametrize(
    ("batch_size", "decode_threads", "processes", "device_name"),
    [
        (3, 1, 0, "cpu"),
        (16, 1, 0, "cpu"),
        (2, 3, 0, "cpu"),
        (3, 2, 2, "cpu"),
        pytest.param(3, 2, 0, "cuda", marks=NO_CUDA),
        pytest.param(16, 1, 2, "cuda", marks=NO_CUDA),
    ],
)
def test_device_path_matches_pil_path(
    tmp_path: Path,
    monkeypatch,
    batch_size: int,
    decode_threads: int,
    processes: int,
    device_name: str,
) -> None:
    """Same rows, failures and (nearly) pixels as the PIL path, in order, with any number of
    decode threads, read in threads or in reader processes; on CUDA the batches come from the
    decode threads' own streams."""
    monkeypatch.setattr(gpu_decode, "PROCESS_MIN_FILES", 0)
    monkeypatch.setattr(read_processes, "RUN_FILES", 2)  # several runs a batch
    paths = _folder(tmp_path)
    device = list(
        iter_batches_on_device(
            paths,
            PRE,
            batch_size,
            2,
            device_name,
            decode_threads=decode_threads,
            reader_processes=processes,
        )
    )
    for batch in device:
        assert batch.images.device.type == device_name
        batch.images = batch.images.cpu()
    pil = list(iter_batches(paths, PRE, batch_size, 2))
    assert len(device) == len(pil)
    for got, want in zip(device, pil, strict=True):
        assert got.indices == want.indices
        assert [(i, f.reason) for i, f in got.failures] == [(i, f.reason) for i, f in want.failures]
        assert got.images.dtype == torch.uint8 and got.images.shape == want.images.shape
        diff = (got.images.int() - want.images.int()).abs()
        assert diff.float().mean() < 2.0 and diff.max() <= 40
        for row, index in enumerate(got.indices):
            if not paths[index].endswith(("00.jpg", "01.jpg", "04.jpg", "06.jpg")):
                assert torch.equal(got.images[row], want.images[row])  # PIL fallback
    failed = {i for b in device for i, _ in b.failures}
    assert failed == {3, 5}


def test_refused_file_falls_back_per_file(tmp_path: Path, monkeypatch) -> None:
    """A file the device decoder refuses goes to PIL alone; the rest of the batch stays."""
    paths = [str(_photo(tmp_path / f"{i}.jpg", seed=i)) for i in range(4)]
    real = gpu_decode._decode_on_device

    def refuse_second(datas, preprocessing, device):
        out = real(datas, preprocessing, device)
        return [None if i == 1 else t for i, t in enumerate(out)]

    monkeypatch.setattr(gpu_decode, "_decode_on_device", refuse_second)
    (batch,) = iter_batches_on_device(paths, PRE, 4, 1, "cpu")
    assert batch.indices == [0, 1, 2, 3] and not batch.failures
    (want,) = iter_batches(paths, PRE, 4, 0)
    assert torch.equal(batch.images[1], want.images[1])


def test_batch_decoder_error_is_found_file_by_file(tmp_path: Path) -> None:
    good = bytearray(_photo(tmp_path / "a.jpg").read_bytes())
    bad = good[:200] + b"\x00" * 10  # header intact, no image data
    decoded = gpu_decode._decode_on_device([good, bad, good], PRE, torch.device("cpu"))
    assert decoded[1] is None
    assert decoded[0].shape == (3, 90, 120) and torch.equal(decoded[0], decoded[2])


def test_resize_crop_matches_pil_geometry() -> None:
    images = torch.randint(0, 256, (2, 3, 75, 100), dtype=torch.uint8)
    out = gpu_decode.resize_crop(images, Preprocessing(resize=48, crop=40))
    assert out.shape == (2, 3, 40, 40) and out.dtype == torch.uint8


def test_run_ranges_never_span_two_batches() -> None:
    assert read_processes.run_ranges(7, 3, 2) == [[(0, 2), (2, 3)], [(3, 5), (5, 6)], [(6, 7)]]
    assert read_processes.run_ranges(0, 3, 2) == []


def test_runs_are_read_in_this_thread_when_processes_fail(tmp_path: Path, monkeypatch) -> None:
    """No worker processes (a sandbox, a frozen app without them): same runs, read here."""
    paths = _folder(tmp_path)
    ranges = [r for batch in read_processes.run_ranges(len(paths), 4, 3) for r in batch]
    runs = read_processes.FileRuns(paths, ranges, None)

    def no_processes() -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(read_processes, "_context", no_processes)
    reader = read_processes.RunReader(runs, processes=2)
    got = [reader.next() for _ in ranges]
    assert isinstance(reader.failed, OSError)
    for run, want in zip(got, (runs[k] for k in range(len(ranges))), strict=True):
        assert run.lengths == want.lengths and run.infos == want.infos
        assert torch.equal(run.data, want.data)
    assert [info is None for run in got for info in run.infos] == [
        False,
        False,
        True,
        True,
        False,
        True,
        False,
        True,
    ]  # PNG, truncated, not an image, EXIF-rotated: the PIL path


def test_runs_come_from_worker_processes_in_order(tmp_path: Path) -> None:
    paths = _folder(tmp_path) * 3
    ranges = [r for batch in read_processes.run_ranges(len(paths), 5, 2) for r in batch]
    runs = read_processes.FileRuns(paths, ranges, None)
    reader = read_processes.RunReader(runs, processes=2)
    try:
        got = [reader.next() for _ in ranges]
    finally:
        reader.close()
    assert reader.failed is None
    assert any(run.data.is_shared() for run in got)  # sent through shared memory
    for k, run in enumerate(got):
        want = runs[k]
        assert run.lengths == want.lengths and run.infos == want.infos
        assert torch.equal(run.data, want.data)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("processes", [0, 2])
def test_named_pipe_and_oversized_file_go_to_the_pil_path(
    tmp_path: Path, monkeypatch, processes: int
) -> None:
    """A pipe named like a JPEG must not block a reader; both it and a file over the size limit
    fail (or decode) exactly as on the PIL path."""
    monkeypatch.setattr(gpu_decode, "PROCESS_MIN_FILES", 0)
    paths = [str(_photo(tmp_path / f"{i}.jpg", seed=i)) for i in range(3)]
    os.mkfifo(tmp_path / "pipe.jpg")
    paths.insert(1, str(tmp_path / "pipe.jpg"))
    assert read_bytes(paths[1]) is None and read_bytes(paths[0], max_bytes=10) is None
    assert read_bytes(paths[0]) == Path(paths[0]).read_bytes()
    done: list = []

    def label() -> None:
        done.extend(iter_batches_on_device(paths, PRE, 2, 2, "cpu", reader_processes=processes))

    worker = threading.Thread(target=label, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "a reader blocked on the named pipe"
    want = list(iter_batches(paths, PRE, 2, 1))
    assert [b.indices for b in done] == [b.indices for b in want] == [[0], [2, 3]]
    assert [(i, f.reason) for b in done for i, f in b.failures] == [
        (i, f.reason) for b in want for i, f in b.failures
    ]


@pytest.mark.parametrize("failures", [2, 99])
def test_device_out_of_memory_backs_off_then_falls_back_to_pil(
    tmp_path: Path, monkeypatch, failures: int
) -> None:
    """Out of device memory: smaller chunks, and at the last the PIL path; never a failed run."""
    paths = _folder(tmp_path)
    real, calls = gpu_decode._decode_on_device, []

    def short_of_memory(datas, preprocessing, device):
        calls.append(len(datas))
        if len(calls) <= failures:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(datas, preprocessing, device)

    monkeypatch.setattr(gpu_decode, "_decode_on_device", short_of_memory)
    got = list(iter_batches_on_device(paths, PRE, 16, 2, "cpu", decode_threads=1))
    (want,) = iter_batches(paths, PRE, 16, 1)
    (batch,) = got
    assert batch.indices == want.indices
    assert [f.reason for _, f in batch.failures] == [f.reason for _, f in want.failures]
    if failures == 2:
        assert calls[0] == 4 and calls[-1] == 4  # the same 4 JPEGs, decoded once memory allows
        assert (batch.images.int() - want.images.int()).abs().float().mean() < 2.0
    else:
        assert torch.equal(batch.images, want.images)  # all through the PIL path


def test_other_device_errors_are_not_taken_for_out_of_memory(tmp_path: Path, monkeypatch) -> None:
    def broken(datas, preprocessing, device):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(gpu_decode, "_decode_on_device", broken)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        list(iter_batches_on_device(_folder(tmp_path), PRE, 16, 2, "cpu"))
