"""Malformed ``.fewshot`` files give one plain UsageError, never another exception; saves clean
the temporary files of earlier, killed saves."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from fewshot_gui.core.errors import UsageError
from fewshot_gui.data import project as project_module
from fewshot_gui.data.project import ClassInfo, Project, load_project, save_project

GOOD: dict[str, Any] = {
    "format": "fewshot-gui-project",
    "version": 1,
    "classes": [{"name": "cat", "color": "#ff0000", "examples": ["c.jpg"]}],
    "corrections": {"a.jpg": "cat"},
    "settings": {"folder": "imgs", "method": "metric", "unknown_threshold": 0.5},
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(GOOD)), **changes}


def _class(**changes: Any) -> dict[str, Any]:
    return _with(classes=[{**GOOD["classes"][0], **changes}])


def _refused(path: Path) -> str:
    with pytest.raises(UsageError) as info:
        load_project(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


BAD_BYTES = {
    "random bytes": random.Random(1).randbytes(3000),
    "invalid utf-8": b'{"classes": ["\xff\xfe\xfa"]}',
    "utf-16 garbage": "not json at all".encode("utf-16"),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "empty": b"",
    "huge integer": b'{"version": ' + b"9" * 5000 + b"}",
    "a list": b"[1, 2]",
    "other format": b'{"format": "other"}',
}

BAD_STRUCTURES = {
    "classes not a list": _with(classes="cat"),
    "a class a string": _with(classes=["cat"]),
    "a class a number": _with(classes=[3]),
    "class name missing": _with(classes=[{"nom": 1}]),
    "class name a number": _class(name=7),
    "class name a list": _class(name=["cat"]),
    "class unknown": _class(name="unknown"),
    "class Unknown": _class(name=" Unknown "),
    "class empty name": _class(name=""),
    "class with a slash": _class(name="a/b"),
    "examples a dict": _class(examples={"a": "b"}),
    "examples a string": _class(examples="c.jpg"),
    "an example a number": _class(examples=[1]),
    "an example with NUL": _class(examples=["a\u0000b.jpg"]),
    "an example not encodable": _class(examples=["\ud800.jpg"]),
    "colour a number": _class(color=255),
    "corrections a list": _with(corrections=["a.jpg", "cat"]),
    "a correction label a number": _with(corrections={"a.jpg": 1}),
    "a correction label null": _with(corrections={"a.jpg": None}),
    "settings a list": _with(settings=[1]),
    "settings a string": _with(settings="x"),
    "folder a number": _with(settings={"folder": 3}),
    "method a list": _with(settings={"method": ["metric"]}),
    "threshold text": _with(settings={"unknown_threshold": "high"}),
    "threshold true": _with(settings={"unknown_threshold": True}),
    "version text": _with(version="1"),
    "version true": _with(version=True),
    "version negative": _with(version=-1),
    "version 0, classes values not lists": {"classes": {"cat": "c.jpg"}},
    "version 0, settings a list": {"classes": {}, "settings": [1]},
    "two classes of one name": _with(classes=[{"name": "a"}, {"name": "a"}]),
    "unknown home folder": _class(examples=["~no-such-user-fewshot/x.jpg"]),
}


@pytest.mark.parametrize("name", list(BAD_BYTES))
def test_malformed_bytes_give_one_usage_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bad.fewshot"
    path.write_bytes(BAD_BYTES[name])
    message = _refused(path)
    assert ("nested too deeply" in message) == name.startswith("deep")


@pytest.mark.parametrize("name", list(BAD_STRUCTURES))
def test_wrong_types_anywhere_give_one_usage_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bad.fewshot"
    path.write_text(json.dumps(BAD_STRUCTURES[name]), encoding="utf-8")
    message = _refused(path)
    assert "Error" not in message  # a plain reason, not an exception's name


def test_reserved_class_name_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.fewshot"
    path.write_text(json.dumps(_class(name="unknown")), encoding="utf-8")
    assert "a class that cannot be used: 'unknown' is reserved" in _refused(path)


def test_missing_folder_and_a_folder_as_project(tmp_path: Path) -> None:
    _refused(tmp_path / "missing.fewshot")
    (tmp_path / "dir.fewshot").mkdir()
    _refused(tmp_path / "dir.fewshot")


def test_too_large_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project_module, "MAX_PROJECT_BYTES", 1000)
    path = tmp_path / "big.fewshot"
    path.write_text(json.dumps(_with(settings={"pad": "x" * 2000})), encoding="utf-8")
    assert "too large" in _refused(path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_a_good_project_in_another_unicode_encoding_opens(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "p.fewshot"
    path.write_bytes(json.dumps(GOOD, ensure_ascii=False).encode(encoding))
    loaded = load_project(path)
    assert loaded.class_names() == ["cat"]
    assert loaded.settings["folder"] == str(tmp_path / "imgs")


def test_a_colour_that_is_not_a_colour_becomes_grey(tmp_path: Path) -> None:
    path = tmp_path / "p.fewshot"
    path.write_text(json.dumps(_class(color="banana")), encoding="utf-8")
    assert load_project(path).classes[0].color == "#808080"


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased towards the keys and shapes a project has."""
    keys = ["format", "version", "classes", "name", "color", "examples", "corrections", "settings"]
    keys += ["folder", "method", "encoder", "unknown_threshold", "x"]
    leaves = [
        None,
        True,
        0,
        1,
        -1,
        2.5,
        "",
        "cat",
        "unknown",
        "fewshot-gui-project",
        "#00ff00",
        "a/b",
        "~nouser-x/y",
        "\u0000",
        "\ud800",
    ]
    kind = rng.random()
    if depth > 4 or kind < 0.4:
        return rng.choice(leaves)
    if kind < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        rng.choice(keys + leaves[6:12]): _random_json(rng, depth + 1)
        for _ in range(rng.randint(0, 5))
    }


def _mutated_good(rng: random.Random) -> dict[str, Any]:
    """GOOD with one value somewhere replaced by a random one."""
    data = json.loads(json.dumps(GOOD))
    holder: Any = data
    path = [rng.choice(list(data))]
    while isinstance(holder[path[-1]], (dict, list)) and holder[path[-1]] and rng.random() < 0.6:
        holder = holder[path[-1]]
        path.append(rng.choice(list(holder) if isinstance(holder, dict) else range(len(holder))))
    holder[path[-1]] = _random_json(rng)
    return data


def test_fuzzed_projects_load_or_raise_usage_error(tmp_path: Path) -> None:
    rng = random.Random(12)
    path = tmp_path / "fuzz.fewshot"
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(600):
        data = _mutated_good(rng) if i % 2 else _random_json(rng)
        path.write_text(json.dumps(data), encoding="utf-8", errors="surrogatepass")
        try:
            project = load_project(path)
        except UsageError as error:
            assert "\n" not in str(error)
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        assert all(isinstance(c.name, str) and c.name.strip() for c in project.classes)
        assert all(isinstance(p, str) for c in project.classes for p in c.examples)
        assert all(isinstance(lab, str) for lab in project.corrections.values())
        assert isinstance(project.settings, dict)
        project.support()  # usable as a support set
    assert outcomes["loaded"] > 50 and outcomes["refused"] > 50, outcomes


def test_save_removes_temp_files_of_killed_saves(tmp_path: Path) -> None:
    target = tmp_path / "p.fewshot"
    stale = [tmp_path / ".p.fewshot.k1ll3d.tmp", tmp_path / ".p.fewshot.abc_12.tmp"]
    for p in stale:
        p.write_text('{"half": ')
    others = [tmp_path / ".other.fewshot.x.tmp", tmp_path / "p.fewshot.tmp", tmp_path / "keep.txt"]
    for p in others:
        p.write_text("not ours")
    save_project(Project([ClassInfo("cat", examples=[str(tmp_path / "c.jpg")])]), target)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in others)  # another file's temps and the user's files stay
    assert load_project(target).class_names() == ["cat"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, *(p.name for p in others)]
    )
