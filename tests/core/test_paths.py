"""One place for folders: the shipped resources, and one user cache folder that every cache
(embeddings, thumbnails, the demo) follows, ``$FEWSHOT_GUI_CACHE`` included."""

from __future__ import annotations

from pathlib import Path

import pytest

from fewshot_gui.core import paths

ROOT = Path(__file__).resolve().parents[2]


def test_resources_come_from_the_package_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(paths.RESOURCES_ENV, raising=False)
    folder = paths.resources_dir()
    # the editable install maps the repository's resources/ to fewshot_gui.resources: one copy
    assert folder == paths.packaged_resources() == ROOT / "resources"
    assert (folder / "checkpoints").is_dir() and (folder / "fewshot-gui.desktop").is_file()
    monkeypatch.setenv(paths.RESOURCES_ENV, str(tmp_path))  # a PyInstaller bundle
    assert paths.resources_dir() == tmp_path


def test_every_cache_follows_the_one_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fewshot_gui.core.cache import default_cache_dir
    from fewshot_gui.data.demo import DEMO_VERSION, default_demo_root
    from fewshot_gui.qt.thumbnails import default_cache_dir as thumbnail_dir

    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    assert thumbnail_dir() == tmp_path / "cache" / "thumbnails"
    assert default_demo_root() == tmp_path / "cache" / DEMO_VERSION
    monkeypatch.setenv(paths.CACHE_ENV, "~/somewhere")
    assert paths.user_cache_dir("x") == Path.home() / "somewhere" / "x"


def test_without_the_variable_the_platform_folders_are_used(monkeypatch: pytest.MonkeyPatch):
    import platformdirs

    monkeypatch.delenv(paths.CACHE_ENV, raising=False)
    cache = Path(platformdirs.user_cache_dir("fewshot-gui", appauthor=False))
    assert paths.user_cache_dir() == cache
    assert paths.user_cache_dir("thumbnails") == cache / "thumbnails"
    data = Path(platformdirs.user_data_dir("fewshot-gui", appauthor=False))
    assert paths.user_data_dir() == data


def test_encoder_messages_name_real_files_not_development_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fewshot_gui.commands.encoders import encoder_rows

    monkeypatch.delenv(paths.RESOURCES_ENV, raising=False)
    shipped = {row["name"]: row for row in encoder_rows()}
    assert "photos.pt" in shipped["photos"]["weights_source"]
    assert (paths.resources_dir() / "checkpoints" / "photos.pt").is_file()
    monkeypatch.setenv(paths.RESOURCES_ENV, str(tmp_path))  # nothing shipped
    for row in encoder_rows():
        text = f"{row['weights_source']} {row['reason']}"
        assert "shared/datasets" not in text and "resources/" not in text, text
    (missing,) = (row["reason"] for row in encoder_rows() if row["name"] == "omniglot")
    assert f"--out {tmp_path / 'checkpoints' / 'omniglot-metric.pt'}" in missing
