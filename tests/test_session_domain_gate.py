"""A gated encoder labels with its tuned features only where the examples look like its tuning
domain; elsewhere the session and evaluate use the base encoder (no negative transfer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from imagefactory import make_image

from fewshot_gui.data.folder import record_for
from fewshot_gui.encoders.backbones import Conv4
from fewshot_gui.encoders.checkpoint import save_checkpoint
from fewshot_gui.encoders.domain_gate import DomainGate
from fewshot_gui.encoders.registry import CONV4_PREPROCESSING
from fewshot_gui.session import LabelingSession
from fewshot_gui.training.evaluate import EvalConfig, run_evaluation

COLORS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 40)}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, color in COLORS.items():
        for i in range(6):
            jitter = tuple(int(np.clip(c + rng.integers(-40, 40), 0, 255)) for c in color)
            make_image(tmp_path / "data" / name / f"{i}.png", color=jitter, size=(50 + i, 40))
    return tmp_path / "data"


def _base_embeddings(paths: list[Path], cache: Path) -> np.ndarray:
    session = LabelingSession("conv4", device="cpu", cache_dir=cache)
    list(session.set_support({"x": paths[:1]}))
    list(session.label([record_for(p) for p in paths]))
    return session.embeddings()[1]


def _gated_checkpoint(path: Path, bank: np.ndarray, threshold: float) -> Path:
    """A 'tuned' Conv-4 (other random weights) whose gate's base is the registered conv4."""
    torch.manual_seed(123)
    model = Conv4(in_channels=3, image_size=84)
    gate = DomainGate("conv4", bank, threshold, "test")
    return save_checkpoint(
        path,
        arch_name="conv4",
        arch_kwargs={"in_channels": 3, "image_size": 84},
        preprocessing=CONV4_PREPROCESSING,
        embed_dim=1600,
        encoder_state=model.state_dict(),
        metadata={"domain_gate": gate.to_dict()},
    )


def test_session_keeps_tuned_features_in_domain_and_switches_to_base_outside(tmp_path, folder):
    reds = sorted((folder / "red").iterdir())
    cache = tmp_path / "cache"
    bank = _base_embeddings(reds[:3], cache)
    ckpt = _gated_checkpoint(tmp_path / "tuned.pt", bank, threshold=0.9999)

    inside = LabelingSession(str(ckpt), device="cpu", cache_dir=cache)
    list(inside.set_support({"red": reds[:3]}))  # the bank's own images: similarity 1
    assert inside.encoder_name == str(ckpt) and "tuned features are used" in inside.encoder_note
    assert inside.take_warnings() == []

    support = {c: sorted((folder / c).iterdir())[:2] for c in ("blue", "green")}
    images = [record_for(p) for c in ("blue", "green") for p in sorted((folder / c).iterdir())]
    # no disk cache here: both sessions embed in float32 (the cache stores float16)
    outside = LabelingSession(str(ckpt), device="cpu", use_cache=False)
    list(outside.set_support(support))
    assert outside.encoder_name == "conv4"
    assert any("plain ImageNet features (conv4)" in w for w in outside.take_warnings())
    assert inside.transductive and not outside.transductive  # refinement only in the domain
    # the unknown score's prior (fitted in the tuning domain) is trusted only where the gate
    # found the examples; elsewhere the final labels relax it to the folder (a second pass)
    assert inside._prior_fits and not outside._prior_fits
    asked = LabelingSession(str(ckpt), device="cpu", use_cache=False, transductive=True)
    list(asked.set_support(support))
    assert asked.encoder_name == "conv4" and asked.transductive  # the user's choice stands
    list(outside.label(images))
    plain = LabelingSession("conv4", device="cpu", use_cache=False, transductive=False)
    list(plain.set_support(support))
    list(plain.label(images))
    assert outside.uses_folder() and plain.uses_folder()
    # after the switch the folder is labeled exactly as the base encoder labels it
    assert outside.predictions().labels == plain.predictions().labels
    np.testing.assert_allclose(
        outside.predictions().unknown_scores, plain.predictions().unknown_scores, atol=1e-5
    )
    np.testing.assert_allclose(
        outside.predictions().probabilities, plain.predictions().probabilities, atol=1e-5
    )
    # the choice is made once: more examples do not switch the encoder back and forth
    list(outside.set_support({"red": reds[:3]}))
    assert outside.encoder_name == "conv4"


def test_evaluate_follows_the_gate_per_episode(tmp_path, folder):
    cache = tmp_path / "cache"
    bank = _base_embeddings(sorted((folder / "red").iterdir())[:3], cache)

    def accuracy(encoder: str, route: bool = True) -> dict:
        config = EvalConfig(
            data_dir=str(folder),
            encoder=encoder,
            way=2,
            shot=1,
            query=2,
            episodes=12,
            split="all",
            cache_dir=str(cache),
            route=route,
            device="cpu",
        )
        return run_evaluation(config)

    never = _gated_checkpoint(tmp_path / "never.pt", bank, threshold=2.0)  # no task passes
    always = _gated_checkpoint(tmp_path / "always.pt", bank, threshold=-1.0)  # every task does
    base, tuned = accuracy("conv4"), accuracy(str(always), route=False)
    on_base, on_tuned = accuracy(str(never)), accuracy(str(always))
    assert on_base["episodes_on_base_features"] == 12 and on_tuned["episodes_on_base_features"] == 0
    assert on_base["accuracy"] == base["accuracy"]
    assert on_tuned["accuracy"] == tuned["accuracy"]
    assert accuracy(str(never), route=False)["episodes_on_base_features"] is None


def test_a_job_stopped_while_the_gate_probes_routes_on_the_next_one(tmp_path, folder):
    """The app cancels a reopened project's cached pass when the user starts labeling: if that
    happened while the gate's base encoder embedded the examples, the next job must still
    follow the gate (it kept the tuned features and its unknown prior before)."""
    reds = sorted((folder / "red").iterdir())
    cache = tmp_path / "cache"
    ckpt = _gated_checkpoint(tmp_path / "tuned.pt", _base_embeddings(reds[:3], cache), 0.9999)
    support = {c: sorted((folder / c).iterdir())[:2] for c in ("blue", "green")}
    session = LabelingSession(str(ckpt), device="cpu", use_cache=False)
    job = session.set_support(support)
    next(job)  # the probe has started
    job.close()  # stopped
    assert session.encoder_name == str(ckpt)
    list(session.set_support(support))
    assert session.encoder_name == "conv4" and not session._prior_fits
