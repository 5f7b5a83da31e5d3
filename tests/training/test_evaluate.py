"""``evaluate``: which classes ``--split auto`` picks (a data set the checkpoint never saw uses all
of its classes, and the output says which), and progress while it embeds and runs episodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from imagefactory import make_image

from fewshot_gui.cli import main
from fewshot_gui.core.errors import UsageError
from fewshot_gui.data.episodes import ClassFolderDataset
from fewshot_gui.data.preprocess import Preprocessing
from fewshot_gui.encoders.backbones import Conv4
from fewshot_gui.encoders.checkpoint import save_checkpoint
from fewshot_gui.training.evaluate import EvalConfig, choose_classes, evaluate

TRAIN = [f"c{i}" for i in range(5)]
VAL = ["c5", "c6", "c7"]
METADATA = {"train_classes": TRAIN, "val_classes": VAL, "classes_at_depth": 1}


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _folder(root: Path, classes: list[str], per_class: int = 2) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            color = ((40 * c) % 256, (90 + 30 * i) % 256, (200 - 20 * c) % 256)
            make_image(root / name / f"{i}.png", size=(20, 18), color=color)
    return root


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A Conv-4 at 16×16 whose metadata records its training and validation classes."""
    torch.manual_seed(0)
    model = Conv4(in_channels=3, image_size=16)
    return save_checkpoint(
        tmp_path / "small.pt",
        arch_name="conv4",
        arch_kwargs={"in_channels": 3, "image_size": 16},
        preprocessing=Preprocessing(resize=16, crop=16, interpolation="bilinear"),
        embed_dim=int(model.embed_dim),
        encoder_state=model.state_dict(),
        metadata={**METADATA, "dataset": str(tmp_path / "own")},
    )


def _choose(root: Path, way: int = 3, **options) -> tuple[list[str], str]:
    config = EvalConfig(data_dir=str(root), encoder="unused", way=way, **options)
    view, said = choose_classes(config, METADATA, ClassFolderDataset(root))
    return view.used_base_classes, said


def test_auto_uses_held_out_classes_on_its_own_data_and_all_on_another(tmp_path: Path) -> None:
    own = _folder(tmp_path / "own", TRAIN + VAL)
    assert _choose(own) == (VAL, "the 3 validation classes of the encoder's checkpoint")
    other = _folder(tmp_path / "other", ["Arcadian", "Latin", "bumpy", "dotted"])
    classes, said = _choose(other)
    assert classes == ["Arcadian", "Latin", "bumpy", "dotted"]
    assert said == "all 4 classes (none of them the checkpoint's)"


def test_auto_leaves_out_training_classes_of_a_mixed_data_set(tmp_path: Path) -> None:
    mixed = _folder(tmp_path / "mixed", ["c0", "c1", "c5", "new1", "new2"])
    classes, said = _choose(mixed)
    assert classes == ["c5", "new1", "new2"]
    assert said == "the 3 classes the checkpoint was not trained on (2 training classes left out)"
    with pytest.raises(UsageError, match="--split all"):
        _choose(mixed, way=4)  # too few left: say how to use them all
    assert _choose(mixed, split="all")[0] == ["c0", "c1", "c5", "new1", "new2"]


def test_an_explicit_split_is_followed_as_given(tmp_path: Path) -> None:
    other = _folder(tmp_path / "other", ["x", "y", "z"])
    with pytest.raises(UsageError, match="classes not found"):
        _choose(other, split="val")
    own = _folder(tmp_path / "own", TRAIN + VAL)
    assert _choose(own, split="train") == (TRAIN, "5 train classes of the encoder's checkpoint")


def test_evaluate_on_data_the_checkpoint_never_saw_says_which_classes_and_shows_progress(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _folder(tmp_path / "textures", ["banded", "bumpy", "dotted", "zigzag"], per_class=3)
    args = ["evaluate", str(other), "--encoder", str(checkpoint), "--way", "3", "--shot", "1"]
    args += ["--query", "1", "--episodes", "5", "--threads", "1", "--device", "cpu"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert (
        "classes: all 4 classes (none of them the checkpoint's): banded, bumpy, dotted, zigzag"
        in out
    )
    lines = err.splitlines()  # not a terminal: plain progress lines, the last of each stage whole
    assert lines[0].startswith("embedding: 0/12 img (0%)")
    assert any(line.startswith("embedding: 12/12 img (100%)") for line in lines)
    assert lines[-1].startswith("episodes: 5/5 (100%)") and "episodes/s, ETA 00:00" in lines[-1]

    assert main([*args, "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["class_names"] == ["banded", "bumpy", "dotted", "zigzag"]
    assert result["classes"] == "all 4 classes (none of them the checkpoint's)"
    assert err == ""


def test_embedding_progress_counts_cached_images_as_done(tmp_path: Path, checkpoint: Path) -> None:
    data = _folder(tmp_path / "data", ["a", "b", "c"])
    config = EvalConfig(
        data_dir=str(data), encoder=str(checkpoint), way=2, query=1, episodes=2, device="cpu",
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip

    def embedding(config: EvalConfig) -> list[tuple[int, int]]:
        items = [p for p in evaluate(config) if getattr(p, "stage", "") == "embedding"]
        return [(p.done, p.total) for p in items]

    assert embedding(config)[0] == (0, 6) and embedding(config) == [(6, 6)]  # cached: done at once
