"""Fault injection: kill an export at random points (copy, move, move across filesystems), undo
from a new process, and check that every image's content exists exactly once and that no partial
or temporary file remains. The harness is benchmarks/fault_injection_export.py (N ≥ 50 kills there;
a few here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "fault_injection_export.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("fault_injection_export", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("config", "how"), [("copy", "step"), ("move", "step"), ("move-xdev", "both")]
)
def test_killed_exports_lose_nothing_and_leave_no_partial_file(harness, tmp_path, config, how):
    tally = harness.run_trials([config], kills=4, how=how, files=6, seed=7, work=tmp_path)[config]
    assert tally.kills == 4 and tally.landed >= 2, tally.line(config)
    assert (tally.lost, tally.duplicated, tally.partial) == (0, 0, 0), tally.problems
