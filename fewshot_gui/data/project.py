"""``.fewshot`` project files: classes (with colours), support examples, corrections and settings.

A project is one JSON object ``{"format": "fewshot-gui-project", "version": N, ...}``. Writes go
through :mod:`fewshot_gui.core.atomic`. Files of a newer version are refused with a plain message;
older versions are migrated on load. Whatever a file holds (random bytes, another encoding, deep
nesting, wrong types anywhere, a reserved class name), loading raises one :class:`UsageError`.
Paths inside the project folder are stored relative to it, so a project folder can be moved as a
whole. No Qt here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fewshot_gui.core.atomic import atomic_write_text
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.names import class_name_problem

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


MAX_PROJECT_BYTES = 64 * 1024 * 1024
"""Larger files are refused unread: a project holds names and paths, not images (a project with
100,000 corrections is ~15 MB)."""

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_TEXT_SETTINGS = ("folder", "method", "encoder")


class _Damaged(Exception):
    """What is wrong inside a project file (turned into one UsageError by :func:`from_dict`)."""


_KIND_WORDS = {str: "text", list: "a list", dict: "a mapping", float: "a number", int: "a number"}


def _words(value: Any) -> str:
    """What ``value`` is, in the words of :data:`_KIND_WORDS` (``true/false`` and ``null`` too)."""
    if isinstance(value, bool):
        return "true/false"
    return "null" if value is None else _KIND_WORDS.get(type(value), type(value).__name__)


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` when it is a ``kind`` (a bool is never a number), else :class:`_Damaged`."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise _Damaged(f"{what} should be {_KIND_WORDS[kinds[0]]}, not {_words(value)}")
    return value


def _path(value: Any, what: str) -> str:
    """A path string the file system can take (no NUL, encodable)."""
    text = _expect(value, str, what)
    if not text or "\0" in text:
        raise _Damaged(f"{what} is not a valid path")
    try:
        os.fsencode(text)
    except UnicodeError:
        raise _Damaged(f"{what} is not a valid path") from None
    return text


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older project dict up to :data:`VERSION` (raises _Damaged on wrong types)."""
    if data.get("version", 0) == 0:  # version 0: {"classes": {name: [paths]}, "folder": …}
        classes = data.get("classes", {})
        if isinstance(classes, dict):
            data["classes"] = [
                {"name": n, "examples": _expect(p, list, f"the examples of class {n!r}")}
                for n, p in classes.items()
            ]
        settings = dict(_expect(data.get("settings", {}), dict, "settings"))
        for key in ("folder", "method", "encoder"):
            if key in data:
                settings[key] = data.pop(key)
        data["settings"] = settings
        data.setdefault("corrections", {})
        data["version"] = 1
    return data


def _class(item: Any, absolute: Callable[[str], str]) -> ClassInfo:
    entry = _expect(item, dict, "each class")
    name = _expect(entry.get("name"), str, "a class name")
    problem = class_name_problem(name)
    if problem:
        raise UsageError(f"the project has a class that cannot be used: {problem}")
    color = _expect(entry.get("color", "#808080"), str, f"the colour of class {name!r}")
    examples = _expect(entry.get("examples", []), list, f"the examples of class {name!r}")
    return ClassInfo(
        name,
        color if _COLOR.fullmatch(color) else "#808080",  # a colour we cannot show: grey
        [absolute(_path(p, f"an example of class {name!r}")) for p in examples],
    )


def _settings(value: Any, absolute: Callable[[str], str]) -> dict[str, Any]:
    settings = dict(_expect(value, dict, "settings"))
    for key in _TEXT_SETTINGS:
        if settings.get(key) is not None:
            _expect(settings[key], str, f"setting {key!r}")
    threshold = settings.get("unknown_threshold")
    if threshold is not None:
        _expect(threshold, (int, float), "setting 'unknown_threshold'")
    if settings.get("folder"):
        settings["folder"] = absolute(_path(settings["folder"], "the folder"))
    return settings


def _parse(data: dict[str, Any], absolute: Callable[[str], str]) -> Project:
    classes = [_class(c, absolute) for c in _expect(data.get("classes", []), list, "classes")]
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise _Damaged("two classes with the same name")
    corrections = {
        absolute(_path(p, "a corrected image")): _expect(lab, str, f"the label of {p}")
        for p, lab in _expect(data.get("corrections", {}), dict, "corrections").items()
    }
    return Project(classes, corrections, _settings(data.get("settings", {}), absolute))


def from_dict(data: Any, base: Path | None = None) -> Project:
    """Parse (and migrate) the JSON form; raises UsageError with a plain reason, whatever ``data``
    holds."""
    if not isinstance(data, dict) or data.get("format", FORMAT) != FORMAT:
        raise UsageError("this is not a fewshot-gui project file")
    version = data.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UsageError("project file is damaged (its format version is not a whole number)")
    if version > VERSION:
        raise UsageError(
            f"this project was saved by a newer fewshot-gui (project format {version}; this version "
            f"reads up to {VERSION}); please update fewshot-gui to open it"
        )
    absolute = (lambda p: _absolute(p, base)) if base is not None else str
    try:
        return _parse(_migrate(dict(data)), absolute)
    except _Damaged as error:
        raise UsageError(f"project file is damaged ({error})") from None
    except (RuntimeError, ValueError, OSError) as error:  # e.g. "~nobody/x": no such home folder
        raise UsageError(f"project file is damaged (a path cannot be used: {error})") from None


def save_project(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write atomically (``core/atomic``): the file is the old or the new project, never half of
    one; temporary files of earlier, killed saves beside it are removed."""
    target = Path(path).expanduser().absolute()
    text = json.dumps(to_dict(project, target.parent), indent=2, ensure_ascii=False)
    atomic_write_text(target, text + "\n")
    return target


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a ``.fewshot`` file. Raises only UsageError, with one plain line (missing, unreadable,
    too large, not JSON, not UTF-8/16/32, nested too deeply, wrong types, newer version)."""
    source = Path(path).expanduser().absolute()
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_PROJECT_BYTES + 1)
    except OSError as error:
        raise UsageError(f"cannot open project {source}: {error.strerror or error}") from None
    if len(raw) > MAX_PROJECT_BYTES:
        raise UsageError(f"{source} is too large to be a project file")
    try:
        data = json.loads(raw)  # bytes: UTF-8 (with or without BOM), UTF-16 or UTF-32
    except RecursionError:
        raise UsageError(f"{source} is not a project file (nested too deeply)") from None
    except (ValueError, MemoryError):  # JSONDecodeError, UnicodeDecodeError, huge numbers
        raise UsageError(f"{source} is not a readable project file (not JSON text)") from None
    try:
        return from_dict(data, source.parent)
    except UsageError as error:
        raise UsageError(f"{source}: {error}") from None
    except RecursionError:
        raise UsageError(f"{source}: project file is damaged (nested too deeply)") from None
