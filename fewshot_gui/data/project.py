"""``.fewshot`` project files: classes (with colours), support examples, corrections and settings.

A project is one JSON object ``{"format": "fewshot-gui-project", "version": N, ...}``. Writes are
atomic (temporary file in the same folder, then ``os.replace``). Files of a newer version are refused
with a plain message; older versions are migrated on load. Paths inside the project folder are stored
relative to it, so a project folder can be moved as a whole. No Qt here.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fewshot_gui.core.errors import UsageError

FORMAT = "fewshot-gui-project"
VERSION = 1
SUFFIX = ".fewshot"


@dataclass
class ClassInfo:
    """One class: its name, display colour (``#rrggbb``) and example image paths."""

    name: str
    color: str = "#808080"
    examples: list[str] = field(default_factory=list)


@dataclass
class Project:
    """Everything needed to reopen a labeling job.

    ``corrections`` maps an image path to the label the user gave it; ``settings`` holds ``folder``,
    ``method``, ``encoder``, ``unknown_threshold`` and any other plain JSON values.
    """

    classes: list[ClassInfo] = field(default_factory=list)
    corrections: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def support(self) -> dict[str, list[str]]:
        """Support set for the session: examples plus corrections, per class (unknown excluded)."""
        out: dict[str, list[str]] = {c.name: list(c.examples) for c in self.classes}
        for path, label in self.corrections.items():
            if label in out and path not in out[label]:
                out[label].append(path)
        return {name: paths for name, paths in out.items() if paths}


def _relative(path: str, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _absolute(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).absolute())


def to_dict(project: Project, base: Path | None = None) -> dict[str, Any]:
    """The JSON form; paths under ``base`` become relative."""
    rel = (lambda p: _relative(p, base)) if base is not None else str
    settings = dict(project.settings)
    if base is not None and isinstance(settings.get("folder"), str) and settings["folder"]:
        settings["folder"] = rel(settings["folder"])
    return {
        "format": FORMAT,
        "version": VERSION,
        "classes": [
            {"name": c.name, "color": c.color, "examples": [rel(p) for p in c.examples]}
            for c in project.classes
        ],
        "corrections": {rel(p): label for p, label in project.corrections.items()},
        "settings": settings,
    }


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older project dict up to :data:`VERSION`."""
    version = int(data.get("version", 0))
    if version == 0:  # version 0: {"classes": {name: [paths]}, "folder": ..., "method": ...}
        classes = data.get("classes", {})
        if isinstance(classes, dict):
            data["classes"] = [{"name": n, "examples": list(p)} for n, p in classes.items()]
        settings = dict(data.get("settings", {}))
        for key in ("folder", "method", "encoder"):
            if key in data:
                settings[key] = data.pop(key)
        data["settings"] = settings
        data.setdefault("corrections", {})
        data["version"] = 1
    return data


def from_dict(data: Any, base: Path | None = None) -> Project:
    """Parse (and migrate) the JSON form; raises UsageError with a plain reason."""
    if not isinstance(data, dict) or data.get("format", FORMAT) != FORMAT:
        raise UsageError("this is not a fewshot-gui project file")
    version = data.get("version", 0)
    if not isinstance(version, int):
        raise UsageError(f"project file has an invalid version {version!r}")
    if version > VERSION:
        raise UsageError(
            f"this project was saved by a newer fewshot-gui (project format {version}; this version "
            f"reads up to {VERSION}); please update fewshot-gui to open it"
        )
    data = _migrate(dict(data))
    absolute = (lambda p: _absolute(p, base)) if base is not None else str
    try:
        classes = [
            ClassInfo(
                str(c["name"]),
                str(c.get("color", "#808080")),
                [absolute(str(p)) for p in c.get("examples", [])],
            )
            for c in data.get("classes", [])
        ]
        corrections = {absolute(str(p)): str(lab) for p, lab in data.get("corrections", {}).items()}
        settings = dict(data.get("settings", {}))
    except (KeyError, TypeError, AttributeError) as error:
        raise UsageError(f"project file is damaged ({error!r})") from None
    if base is not None and isinstance(settings.get("folder"), str) and settings["folder"]:
        settings["folder"] = absolute(settings["folder"])
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise UsageError("project file is damaged (two classes with the same name)")
    return Project(classes, corrections, settings)


def save_project(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write atomically; the file is either the old or the new project, never half of one."""
    target = Path(path).expanduser().absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_dict(project, target.parent), indent=2, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a ``.fewshot`` file; raises UsageError (missing, not JSON, newer version, damaged)."""
    source = Path(path).expanduser().absolute()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot open project {source}: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{source} is not a readable project file (not JSON)") from None
    return from_dict(data, source.parent)
