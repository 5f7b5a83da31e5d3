"""PyInstaller runtime hook, run before the app's first import inside the bundle.

* Points the app at the bundled ``resources/`` (checkpoints, icons) through ``FEWSHOT_GUI_RESOURCES``,
  which ``fewshot_gui.core.paths.resources_dir()`` reads.
* CPU bundles ship torchvision without its C extension (PyPI's is a CUDA build that cannot load
  beside CPU-only torch). torchvision works without it, except that it registers fake kernels for
  ``torchvision::nms`` / ``qnms`` unconditionally; their schemas are declared here, lazily, just
  before torchvision is first imported, so the app does not import torch at start-up.
"""

import importlib.abc
import os
import sys

_BASE = getattr(sys, "_MEIPASS", os.path.dirname(os.path.abspath(sys.executable)))
os.environ["FEWSHOT_GUI_RESOURCES"] = os.path.join(_BASE, "resources")


class _TorchvisionOpsShim(importlib.abc.MetaPathFinder):
    """Declares torchvision's two unconditional ops on the first ``import torchvision``."""

    library = None  # keeps the torch.library.Library alive for the whole process

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        import torch

        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TorchvisionOpsShim.library = lib
        return None  # the regular finders import torchvision itself


def _torchvision_has_extension() -> bool:
    folder = os.path.join(_BASE, "torchvision")
    try:
        return any(name.startswith("_C.") for name in os.listdir(folder))
    except OSError:
        return True  # no torchvision in this bundle: nothing to shim


if not _torchvision_has_extension():
    sys.meta_path.insert(0, _TorchvisionOpsShim())
