"""Where the device-decoding loader spends its time: each stage alone, then the whole loader.

Written when the CUDA end-to-end target (10,000 img/s, ResNet-18) was missed because our loader
decoded 6–7k img/s where nvJPEG alone does 15–20k; it showed that the reader threads queue for the
GIL (more threads, fewer files a second). This prints, for one folder of JPEGs, side by side:

* read: the reader threads alone (file bytes + header check), 1, 2, 4, 8 and ``--readers`` of them;
* nvjpeg: ``decode_jpeg`` on the device from bytes already in memory, one call per batch;
* nvjpeg+resize: the same plus :func:`resize_crop` (what one batch costs the decode thread);
* nvjpeg+resize in 2 and 3 threads at once (torchvision lets one decode call run at a time);
* loader: :func:`iter_batches_on_device`, everything overlapped, 1 or 2 decode threads, reading
  in 1 to ``--readers`` threads or in 2 to 8 processes;
* gil: how far a pure-Python counting thread gets during one batch decode, relative to idle
  (≈1: the decode releases the GIL; ≈0: it holds it and serialises the readers).

    python benchmarks/decode_stages.py --folder DIR [--device cuda] [--batch 512] [--readers 15]

Runs on a CPU too (libjpeg instead of nvJPEG), to try it.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from fewshot_gui.bench.synthetic import make_photos
from fewshot_gui.core.device import cpu_count
from fewshot_gui.data import gpu_decode
from fewshot_gui.data.folder import scan_folder
from fewshot_gui.encoders.registry import resolve_encoder


def rate(n: int, seconds: float) -> str:
    return f"{n / max(seconds, 1e-9):9.0f} img/s"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def counting_rate(seconds: float, during=None) -> float:
    """Increments per second of a pure-Python loop in another thread (while ``during`` runs)."""
    stop, count = threading.Event(), [0]

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=spin)
    start = time.perf_counter()
    thread.start()
    if during is None:
        time.sleep(seconds)
    else:
        during()
    stop.set()
    thread.join()
    return count[0] / (time.perf_counter() - start)


def timed(label: str, n: int, work, device: torch.device) -> None:
    start = time.perf_counter()
    work()
    sync(device)
    print(f"{label:<34}{rate(n, time.perf_counter() - start)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", help="JPEGs to use (default: 2,000 synthetic 500×375 ones)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--readers", type=int, default=max(1, cpu_count() - 1))
    parser.add_argument("--limit", type=int, default=8192, help="images per stage at most")
    args = parser.parse_args()
    device = torch.device(args.device)
    prep = resolve_encoder("resnet18").preprocessing
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp) / "photos"
        if not args.folder:
            make_photos(folder, 2000)
        paths = [r.path for r in scan_folder(folder)][: args.limit]
        print(f"{len(paths)} files, batch {args.batch}, {args.readers} readers, on {device}")

        read = [gpu_decode._read(p, prep, None) for p in paths[: args.batch]]  # warm-up
        run = gpu_decode.READ_RUN
        runs = [paths[i : i + run] for i in range(0, len(paths), run)]
        for readers in sorted({1, 2, 4, 8, args.readers}):
            with ThreadPoolExecutor(readers) as pool:
                timed(
                    f"read, {readers} threads, {run} files a task",
                    len(paths),
                    lambda pool=pool: list(
                        pool.map(lambda r: gpu_decode._read_files(r, prep, None), runs)
                    ),
                    device,
                )
        read = [gpu_decode._read(p, prep, None) for p in paths]
        started: list[bool] = []
        datas = [r.data for r in read if isinstance(r, gpu_decode._Jpeg)]
        batches = [datas[i : i + args.batch] for i in range(0, len(datas), args.batch)]
        gpu_decode._decode_on_device(batches[0], prep, device)  # warm-up (nvJPEG start-up)
        sync(device)

        def decode_all() -> None:
            for batch in batches:
                gpu_decode._decode_on_device(batch, prep, device)

        timed("nvjpeg, 1 thread", len(datas), decode_all, device)

        def decode_resize(batch: list[bytearray]) -> None:
            images = gpu_decode._decode_on_device(batch, prep, device)
            gpu_decode.resize_crop(torch.stack(images), prep)  # synthetic: one size

        timed(
            "nvjpeg+resize, 1 thread",
            len(datas),
            lambda: [decode_resize(b) for b in batches],
            device,
        )
        for threads in (2, 3):
            with ThreadPoolExecutor(threads) as pool:
                timed(
                    f"nvjpeg+resize, {threads} threads",
                    len(datas),
                    lambda pool=pool: list(pool.map(decode_resize, batches)),
                    device,
                )

        # (decode threads, reader threads, reader processes)
        sweep = [(1, 1, 0), (2, 1, 0), (2, 2, 0), (2, 4, 0), (2, args.readers, 0)]
        sweep += [(2, 2, 2), (2, 2, 4), (2, 2, 6), (1, 2, 4), (2, 2, 8)]
        for decode_threads, readers, processes in sweep:

            def load(decode_threads=decode_threads, readers=readers, processes=processes) -> None:
                for _ in gpu_decode.iter_batches_on_device(
                    paths,
                    prep,
                    args.batch,
                    readers,
                    device,
                    max_pixels=None,
                    decode_threads=decode_threads,
                    reader_processes=processes,
                ):
                    pass

            if processes and not started:
                load()  # warm-up: the reader processes' fork server starts (imports torch)
                started.append(True)
            readers_said = f"{processes} reader processes" if processes else f"{readers} readers"
            timed(f"loader, {decode_threads} decode, {readers_said}", len(paths), load, device)

        idle = counting_rate(0.5)
        busy = counting_rate(0, lambda: (decode_resize(batches[0]), sync(device)))
        print(
            f"gil           a Python thread ran at {busy / idle:.2f}× its idle speed during a "
            "batch decode (1: GIL released)"
        )


if __name__ == "__main__":
    main()
