"""THE place that decides device, dtype, autocast and batch size. Nothing else calls ``.cuda()``.

Everything that runs a model receives one :class:`DevicePlan` and moves tensors with
:meth:`DevicePlan.to_device`; autocast comes from :meth:`DevicePlan.autocast`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from fewshot_gui.core.errors import UsageError


@dataclass(frozen=True)
class DevicePlan:
    """How to run models on this machine.

    ``autocast_dtype`` is None for full precision. ``batch_size`` is the starting batch size for
    inference at ``image_size``; callers halve it on out-of-memory (see :func:`is_out_of_memory`).
    ``decode_on_device``: decode JPEGs on the device (nvJPEG, see ``data/gpu_decode.py``) in
    ``decode_threads`` threads, files read by ``reader_processes`` processes (0: by
    ``device_readers`` threads; few, since reading a cached JPEG is mostly Python holding the GIL
    and more threads only queue for it).
    """

    device: torch.device
    name: str
    autocast_dtype: torch.dtype | None
    batch_size: int
    num_workers: int
    pin_memory: bool
    channels_last: bool
    decode_on_device: bool = False
    decode_threads: int = 2
    device_readers: int = 4
    reader_processes: int = 0

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """Move a (possibly pinned) CPU tensor to the device without blocking the host."""
        return tensor.to(self.device, non_blocking=self.pin_memory)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move a model to the device in inference layout (channels-last where the plan says)."""
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    @property
    def loader_workers(self) -> int:
        """Decoding threads to run beside the model. On CUDA every core but one decodes; on the
        CPU decoding (~100 images/s per core at 224 px) outruns the model (~5-75 images/s on 2
        cores) on half the cores, and fewer decode threads preempt fewer of the model's threads
        (measured on a loaded 2-core machine: end to end 4.3 images/s with 1 decode thread vs
        3.9 with 2, ResNet-18)."""
        return self.num_workers if self.device.type != "cpu" else max(1, self.num_workers // 2)

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """Mixed precision for inference and training when the device supports it."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def cpu_count() -> int:
    """CPUs this process may use (respects affinity / container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def gpu_decode_available() -> bool:
    """True when torchvision can decode JPEGs on CUDA (nvJPEG); ``FEWSHOT_GPU_DECODE=0`` turns it
    off."""
    if os.environ.get("FEWSHOT_GPU_DECODE", "1") == "0" or not torch.cuda.is_available():
        return False
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except Exception:
        return False
    return True


def _env_count(name: str, default: int, minimum: int = 1) -> int:
    """A count from the environment variable ``name`` (for benchmarks), else ``default``."""
    try:
        return max(minimum, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _reader_processes() -> int:
    """Reader processes for the device decoder: half the cores, at most 6, where a fork server
    starts them in milliseconds (Linux); none in a frozen app or where processes are spawned
    (each would import torch again: seconds per labeling job)."""
    import multiprocessing

    if getattr(sys, "frozen", False) or "forkserver" not in multiprocessing.get_all_start_methods():
        return 0
    return min(6, max(1, cpu_count() // 2))


def plan_device(requested: str = "auto", image_size: int = 224) -> DevicePlan:
    """Pick CUDA, then Apple MPS, then CPU (or what ``requested`` names) and size the work.

    ``requested`` is ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Raises
    :class:`UsageError` when the requested device is not present.
    """
    requested = (requested or "auto").lower()
    workers = max(1, cpu_count() - (0 if cpu_count() <= 2 else 1))
    pixels_scale = max(1.0, (image_size / 224) ** 2)
    if requested == "auto":
        if torch.cuda.is_available():
            requested = "cuda"
        elif _mps_available():
            requested = "mps"
        else:
            requested = "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(
                "--device cuda was asked for, but no CUDA GPU is available here; "
                "use --device cpu or auto"
            )
        device = torch.device(requested)
        props = torch.cuda.get_device_properties(device)
        bf16 = torch.cuda.is_bf16_supported()
        mem_gb = props.total_memory / 2**30
        batch = int(min(1024, max(32, 16 * mem_gb)) / pixels_scale)
        torch.backends.cudnn.benchmark = True
        return DevicePlan(
            device,
            f"GPU: {props.name}",
            torch.bfloat16 if bf16 else torch.float16,
            max(8, batch),
            workers,
            True,
            True,
            decode_on_device=gpu_decode_available(),
            decode_threads=_env_count("FEWSHOT_DECODE_THREADS", 2),
            device_readers=_env_count("FEWSHOT_DEVICE_READERS", min(4, workers)),
            reader_processes=_env_count("FEWSHOT_READER_PROCESSES", _reader_processes(), minimum=0),
        )
    if requested == "mps":
        if not _mps_available():
            raise UsageError("--device mps was asked for, but Apple MPS is not available here")
        return DevicePlan(
            torch.device("mps"),
            "Apple GPU (MPS)",
            None,
            max(8, int(64 / pixels_scale)),
            workers,
            False,
            False,
        )
    if requested != "cpu":
        raise UsageError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps")
    return DevicePlan(
        torch.device("cpu"),
        f"CPU ({cpu_count()} cores)",
        None,
        max(4, int(32 / pixels_scale)),
        workers,
        False,
        True,  # oneDNN's NHWC convolutions: measured 25-45 % faster on 2 cores (ResNet-18,
        # EfficientNet-Lite0, Conv-4)
    )


def is_out_of_memory(error: BaseException) -> bool:
    """True for a device out-of-memory error (then halve the batch and retry)."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def empty_device_cache(plan: DevicePlan) -> None:
    """Release cached device memory after an out-of-memory error."""
    if plan.is_cuda:
        torch.cuda.empty_cache()


@contextlib.contextmanager
def inference(plan: DevicePlan) -> Iterator[None]:
    """``torch.inference_mode`` plus the plan's autocast."""
    with torch.inference_mode(), plan.autocast():
        yield
