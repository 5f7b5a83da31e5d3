"""``fewshot-gui self-test`` builds the window offscreen and labels the demo through the worker."""

from __future__ import annotations

import argparse

from fewshot_gui.commands import self_test


def test_self_test_waits_for_the_labeling_job_not_the_cancelled_reopen_pass(
    qapp, tmp_path, monkeypatch, capsys
):
    """Opening the demo project starts a pass over cached embeddings that Label cancels; the
    self-test must report the labeling job, not that cancellation ('FAILED: job cancelled')."""
    monkeypatch.setenv("FEWSHOT_GUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    parser = argparse.ArgumentParser()
    self_test.configure(parser)
    args = parser.parse_args(["--encoder", "conv4", "--device", "cpu"])
    assert self_test.run(args) == 0, capsys.readouterr().out
    assert "self-test: OK" in capsys.readouterr().out
