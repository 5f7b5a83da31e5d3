"""install.sh / uninstall.sh against a fake bundle in a temporary HOME: what is installed, that the
launcher and menu entry run the app, and that uninstalling removes exactly that and keeps user data."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    """An unpacked artifact: a fake bundle (a shell script app) with the real resources."""
    folder = tmp_path / "fewshot-gui-0.0.0-linux-x86_64-cpu"
    bundle = folder / "fewshot-gui"
    shutil.copytree(ROOT / "resources", bundle / "_internal" / "resources")
    app = bundle / "fewshot-gui"
    app.write_text('#!/bin/sh\necho "fake fewshot-gui $*"\n')
    app.chmod(app.stat().st_mode | stat.S_IEXEC)
    (bundle / "BUILD_INFO").write_text("name=fewshot-gui\nversion=0.0.0\nvariant=cpu\n")
    for script in ("install.sh", "uninstall.sh"):
        shutil.copy2(PACKAGING / script, folder / script)
    return folder


def _run(script: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    return subprocess.run(
        ["sh", str(script), *args], env=env, capture_output=True, text=True, timeout=60
    )


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_install_puts_app_launcher_entry_icons_and_mime_type(artifact, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = _run(artifact / "install.sh", home)
    assert result.returncode == 0, result.stderr
    share = home / ".local" / "share"
    app = share / "fewshot-gui" / "fewshot-gui"
    assert os.access(app, os.X_OK)
    entry = (share / "applications" / "fewshot-gui.desktop").read_text()
    assert f"Exec={app} %f" in entry.splitlines()
    assert "Name=Few-Shot Labeler" in entry.splitlines()
    for size in ("16x16", "48x48", "256x256"):
        assert (share / "icons" / "hicolor" / size / "apps" / "fewshot-gui.png").is_file()
        assert (
            share / "icons/hicolor" / size / "mimetypes/application-x-fewshot-project.png"
        ).is_file()
    assert (share / "mime" / "packages" / "fewshot-gui-mime.xml").is_file()
    validator = shutil.which("desktop-file-validate")
    if validator:  # the installed entry, with its absolute Exec, is still valid
        checked = subprocess.run([validator, str(share / "applications" / "fewshot-gui.desktop")])
        assert checked.returncode == 0
    launcher = home / ".local" / "bin" / "fewshot-gui"
    ran = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, timeout=30)
    assert ran.stdout.strip() == "fake fewshot-gui --version"


def test_uninstall_removes_exactly_the_install_and_keeps_user_data(artifact, tmp_path):
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / ".local" / "share" / "applications").mkdir(parents=True)
    other_entry = home / ".local" / "share" / "applications" / "other.desktop"
    other_entry.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    before = _tree(home)
    assert _run(artifact / "install.sh", home).returncode == 0
    # What the app and the user write after installing: settings, caches, projects, data.
    user_files = [
        home / ".config" / "fewshot-gui" / "settings.ini",
        home / ".cache" / "fewshot-gui" / "embeddings" / "x.npy",
        home / ".local" / "share" / "fewshot-gui" / "projects" / "mine.fewshot",
        home / "Documents" / "photos.fewshot",
    ]
    for path in user_files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("user data")

    uninstall = home / ".local" / "share" / "fewshot-gui" / "uninstall.sh"
    result = _run(uninstall, home)
    assert result.returncode == 0, result.stderr
    for path in user_files:
        assert path.read_text() == "user data"
    created_by_user = {str(p.relative_to(home)) for p in user_files}
    created_by_user |= {
        str(parent.relative_to(home))
        for p in user_files
        for parent in p.parents
        if parent != home and home in parent.parents
    }
    # Nothing of the install is left; a folder that was there before may keep its regenerated index.
    regenerated = {".local/share/applications/mimeinfo.cache"}
    assert _tree(home) - regenerated == before | created_by_user
    assert other_entry.is_file()


def test_reinstall_upgrades_in_place_and_uninstall_then_leaves_nothing(artifact, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert _run(artifact / "install.sh", home).returncode == 0
    stale = home / ".local" / "share" / "fewshot-gui" / "_internal" / "old-module.so"
    manifest = home / ".local" / "share" / "fewshot-gui" / "install-manifest.txt"
    stale.write_text("from an older version")
    manifest.write_text(manifest.read_text() + f"file:{stale}\n")
    second = _run(artifact / "install.sh", home)
    assert second.returncode == 0, second.stderr
    assert not stale.exists()  # the earlier install was removed first
    assert (
        _run(artifact / "uninstall.sh", home).returncode == 0
    )  # from the artifact: default prefix
    assert _tree(home) == set()


def test_custom_prefix_and_refusals(artifact, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "apps" / "labeler"
    assert _run(artifact / "install.sh", home, "--prefix", str(prefix)).returncode == 0
    entry = (home / ".local/share/applications/fewshot-gui.desktop").read_text()
    assert f"Exec={prefix}/fewshot-gui %f" in entry.splitlines()
    assert not (home / ".local" / "share" / "fewshot-gui").exists()
    refused = _run(artifact / "install.sh", home, "--prefix", str(home))
    assert refused.returncode == 2 and "refusing" in refused.stderr
    missing = _run(artifact / "uninstall.sh", home)  # nothing at the default prefix
    assert missing.returncode == 1 and "no Few-Shot Labeler install" in missing.stderr
    assert _run(prefix / "uninstall.sh", home).returncode == 0
    assert not prefix.exists()


def test_install_refuses_a_folder_without_a_bundle(tmp_path):
    shutil.copy2(PACKAGING / "install.sh", tmp_path / "install.sh")
    result = _run(tmp_path / "install.sh", tmp_path)
    assert result.returncode == 1
    assert "no app bundle" in result.stderr
