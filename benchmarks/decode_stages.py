"""Where the device-decoding loader spends its time: each stage alone, then the whole loader.

The CUDA end-to-end target (10,000 img/s, ResNet-18) is missed because our loader decodes 6–7k
img/s where nvJPEG alone does 15–17k. This prints, for one folder of JPEGs, side by side:

* read: the reader threads alone (file bytes + header check), img/s;
* nvjpeg: ``decode_jpeg`` on the device from bytes already in memory, one call per batch;
* nvjpeg+resize: the same plus :func:`resize_crop` (what one batch costs the decode thread);
* loader: :func:`iter_batches_on_device`, everything overlapped;
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

from fewshot_gui.commands.bench import make_photos
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

        read: list = []
        with ThreadPoolExecutor(args.readers) as pool:
            timed(
                "read, a future per file",
                len(paths),
                lambda: read.extend(pool.map(lambda p: gpu_decode._read(p, prep, None), paths)),
                device,
            )
            run = gpu_decode.READ_RUN
            runs = [paths[i : i + run] for i in range(0, len(paths), run)]
            timed(
                f"read, a future per {run} files",
                len(paths),
                lambda: list(pool.map(lambda r: gpu_decode._read_files(r, prep, None), runs)),
                device,
            )
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

        for decode_threads, readers in (
            (1, args.readers),
            (2, args.readers),
            (3, args.readers),
            (2, max(1, args.readers // 2)),
        ):

            def load(decode_threads=decode_threads, readers=readers) -> None:
                for _ in gpu_decode.iter_batches_on_device(
                    paths,
                    prep,
                    args.batch,
                    readers,
                    device,
                    max_pixels=None,
                    decode_threads=decode_threads,
                ):
                    pass

            timed(f"loader, {decode_threads} decode, {readers} readers", len(paths), load, device)

        idle = counting_rate(0.5)
        busy = counting_rate(0, lambda: (decode_resize(batches[0]), sync(device)))
        print(
            f"gil           a Python thread ran at {busy / idle:.2f}× its idle speed during a "
            "batch decode (1: GIL released)"
        )


if __name__ == "__main__":
    main()
