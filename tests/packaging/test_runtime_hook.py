"""The PyInstaller runtime hook: points the app at the bundled resources and installs the torchvision
shim only when the bundle has no torchvision extension (run in a subprocess: it edits sys.meta_path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "packaging" / "pyi_rth_fewshot.py"

PROBE = """
import json, runpy, sys
sys._MEIPASS = sys.argv[1]
runpy.run_path(sys.argv[2])
import os
print(json.dumps({
    "resources": os.environ["FEWSHOT_GUI_RESOURCES"],
    "shim": any(type(f).__name__ == "_TorchvisionOpsShim" for f in sys.meta_path),
    "torch": "torch" in sys.modules,
}))
"""


def _probe(meipass: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(meipass), str(HOOK)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"FEWSHOT_GUI_RESOURCES": "/somewhere/else", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_bundled_resources_win_and_torch_is_not_imported_at_start(tmp_path):
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "_C.so").write_bytes(b"")
    seen = _probe(tmp_path)
    assert seen == {"resources": str(tmp_path / "resources"), "shim": False, "torch": False}


def test_shim_waits_for_torchvision_when_its_extension_is_left_out(tmp_path):
    (tmp_path / "torchvision").mkdir()  # the CPU bundle: torchvision without _C
    seen = _probe(tmp_path)
    assert seen["shim"] is True
    assert seen["torch"] is False  # declared lazily, on the first `import torchvision`
