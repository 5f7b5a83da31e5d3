"""Episodic meta-training of an encoder for one adaptation family; resumable; a generator.

``meta_train(config)`` yields :class:`Progress` after each meta-iteration and a ``dict`` after each
validation (``{"episode", "val_accuracy", "val_ci95", "best"}``); the last item is a dict with
``"done": True``. The best checkpoint (by validation accuracy on held-out classes/alphabets) is kept
at ``config.out``; ``<out>.state`` holds everything needed to continue (weights, optimizer, step,
RNG state) and is rewritten atomically every ``state_every`` iterations and on interruption.

Episode ``i`` depends only on ``(seed, i)`` and the learning rate only on the step, so a resumed run
replays exactly what the uninterrupted one would have done.

The method is the adapter registry's: its class gives the learner trained here
(:func:`~fewshot_gui.training.episode_model.build_learner`, from ``inner_steps`` / ``inner_lr`` /
``adapt`` and ``options``); what the learner reports (``describe()``, ``calibrate()`` after each
validation: the metric method's temperature, fitted on the validation episodes) is recorded in the
checkpoint's metadata, and its ``adapter_state()`` is the checkpoint's adapter state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch

from fewshot_gui.core.device import plan_device
from fewshot_gui.core.errors import UsageError
from fewshot_gui.core.types import Progress
from fewshot_gui.training.episodic_run import EpisodicRun
from fewshot_gui.training.meta_config import MetaTrainConfig

__all__ = ["MetaTrainConfig", "meta_train", "run_meta_training"]


def meta_train(config: MetaTrainConfig) -> Iterator[Progress | dict[str, Any]]:
    """Run (or resume) meta-training; see the module docstring for what is yielded."""
    if config.threads:
        torch.set_num_threads(config.threads)
    for name in ("way", "shot", "episodes", "meta_batch"):
        if getattr(config, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    plan = plan_device(config.device, image_size=config.image_size or 84)
    run = EpisodicRun(config, plan)
    resumed = config.resume and run.load_state()
    if resumed:
        yield {"resumed_at": run.step_done}
    total = config.episodes
    start_step, started = run.step_done, time.perf_counter()
    wall_before = run.wall_s
    last_val = run.best.get("val_accuracy")
    try:
        while run.step_done < total:
            loss, acc = run.step()
            elapsed = time.perf_counter() - started
            run.wall_s = wall_before + elapsed
            if config.time_limit is not None and elapsed >= config.time_limit:
                total = run.step_done  # out of time: validate and save as at the planned end
            rate = (run.step_done - start_step) / max(elapsed, 1e-9)
            yield Progress(
                run.step_done,
                total,
                f"loss {loss:.3f} acc {acc:.3f}",
                rate,
                (total - run.step_done) / rate if rate > 0 else None,
            )
            due = config.val_every > 0 and run.step_done % config.val_every == 0
            if run.val_sampler is not None and (due or run.step_done == total):
                accuracy, ci95 = run.validate()
                last_val = accuracy
                best = not run.best or accuracy > run.best["val_accuracy"]
                record = {
                    "episode": run.step_done,
                    "val_accuracy": accuracy,
                    "val_ci95": ci95,
                    "best": best,
                }
                run.history.append(record)
                if best:
                    run.best = {"val_accuracy": accuracy, "val_ci95": ci95, "step": run.step_done}
                    run.save_checkpoint(accuracy, ci95)
                yield record
            if run.val_sampler is None and run.step_done == total:
                run.save_checkpoint(None, None)
            if run.step_done % max(1, config.state_every) == 0 or run.step_done == total:
                run.save_state()
    except (KeyboardInterrupt, GeneratorExit):
        if not run.updating:
            run.save_state()
        raise
    yield {
        "done": True,
        "checkpoint": config.out,
        "state": run.state_path,
        "episodes": run.step_done,
        "best": run.best,
        "last_val_accuracy": last_val,
        "device": plan.name,
        "wall_s": run.wall_s,
    }


def run_meta_training(config: MetaTrainConfig, report=None) -> dict[str, Any]:
    """Drive :func:`meta_train` to the end; ``report(item)`` sees every yielded item."""
    result: dict[str, Any] = {}
    for item in meta_train(config):
        if report is not None:
            report(item)
        if isinstance(item, dict) and item.get("done"):
            result = item
    return result
