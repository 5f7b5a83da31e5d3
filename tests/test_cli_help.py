"""``fewshot-gui --help``, ``-h`` and every command's help exit 0 (a new command is covered the
moment it joins ``COMMANDS``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fewshot_gui.cli import COMMANDS, main


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith("usage: fewshot-gui")
    return out


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help_lists_every_command(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _help([flag], capsys)
    for name in COMMANDS:
        assert name in out
    assert "95% interval" in out  # a '%' in a command's help is shown, not a formatting error


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_help(command: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _help([command, flag], capsys)
    assert f"usage: fewshot-gui {command}" in out


def test_help_as_a_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fewshot_gui", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: fewshot-gui" in done.stdout and "label" in done.stdout
