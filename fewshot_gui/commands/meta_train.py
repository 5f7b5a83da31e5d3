"""``fewshot-gui meta-train DATA_DIR …``: episodic meta-training; progress line on stderr."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Any

BACKBONE_CHOICES = ("conv4", "resnet12", "efficientnet-lite0")


def configure(parser: argparse.ArgumentParser) -> None:
    from fewshot_gui.adapters.registry import method_help, trainable_names

    methods = trainable_names()  # every registered method that has a learner (plug-ins too)
    helps = method_help()
    add = parser.add_argument
    add("data_dir", metavar="DATA_DIR", help="class folders (or group/class folders, as Omniglot)")
    add(
        "--method",
        choices=methods,
        default="metric",
        help="; ".join(f"{m}: {helps[m]}" for m in methods).replace("%", "%%"),
    )
    add("--backbone", choices=BACKBONE_CHOICES, default="conv4")
    add("--way", type=int, default=5, help="classes per training episode")
    add("--shot", type=int, default=1, help="support examples per class")
    add("--query", type=int, default=5, help="query examples per class")
    add("--episodes", type=int, default=1000, help="meta-iterations (each --meta-batch episodes)")
    add("--out", required=True, metavar="CKPT", help="checkpoint to write (best validation)")
    add("--seed", type=int, default=0)
    add("--resume", action="store_true", help="continue from CKPT.state if it exists")
    add("--image-size", type=int, help="input side in pixels (default 28 grayscale / 84 / 224)")
    add("--channels", type=int, choices=(1, 3), help="default: 1 for grayscale images")
    add("--rotations", action="store_true", help="training classes × 4 rotations (Omniglot)")
    add("--classes-at-depth", default="auto", choices=("auto", "1", "2"))
    add("--val-fraction", type=float, default=0.2, help="share of classes/alphabets held out")
    add("--val-every", type=int, default=500, help="validate every N meta-iterations")
    add("--val-episodes", type=int, default=100)
    add("--val-way", type=int, help="default: min(way, 20)")
    add("--val-shot", type=int)
    add("--val-query", type=int)
    add("--lr", type=float, default=1e-3, help="Adam learning rate (halved every --lr-halve-every)")
    add("--lr-halve-every", type=int, default=2000)
    add("--clip", type=float, default=10.0, help="gradient norm clip (0: none)")
    add("--inner-steps", type=int, default=5)
    add("--inner-lr", type=float, help="default: the method's (maml: 0.4 full network, 0.1 head)")
    add("--meta-batch", type=int, default=1, help="tasks per optimizer step")
    add("--adapt", choices=("full", "head"), help="maml/fomaml inner loop scope")
    add(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the method's own learner option, e.g. distance=euclidean for metric (repeatable)",
    )
    add("--init", metavar="CKPT", help="start from this checkpoint's encoder (e.g. metric-trained)")
    add("--freeze-until", metavar="PREFIX", help="freeze parameters before this name prefix")
    add("--backbone-lr-scale", type=float, help="encoder lr factor (default 0.1 pretrained)")
    add("--state-every", type=int, default=50, help="write CKPT.state every N meta-iterations")
    add("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add("--threads", type=int, help="CPU threads for torch (e.g. 1 to keep the machine usable)")
    add(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop after this much training time (then validate and keep the best checkpoint)",
    )
    add(
        "--preload",
        action="store_true",
        default=None,
        help="decode the whole data set into memory once (default: only for images ≤ 64 px)",
    )


def _config(args: argparse.Namespace) -> Any:
    from fewshot_gui.commands.evaluate import _options as parse_options
    from fewshot_gui.training.meta_train import MetaTrainConfig

    depth = args.classes_at_depth
    return MetaTrainConfig(
        data_dir=args.data_dir,
        out=args.out,
        method=args.method,
        backbone=args.backbone,
        way=args.way,
        shot=args.shot,
        query=args.query,
        episodes=args.episodes,
        seed=args.seed,
        image_size=args.image_size,
        channels=args.channels,
        rotations=args.rotations,
        classes_at_depth=depth if depth == "auto" else int(depth),
        val_fraction=args.val_fraction,
        val_every=args.val_every,
        val_episodes=args.val_episodes,
        val_way=args.val_way,
        val_shot=args.val_shot,
        val_query=args.val_query,
        lr=args.lr,
        lr_halve_every=args.lr_halve_every,
        clip=args.clip,
        inner_steps=args.inner_steps,
        inner_lr=args.inner_lr,
        meta_batch=args.meta_batch,
        adapt=args.adapt,
        options=parse_options(args.option),
        init=args.init,
        freeze_until=args.freeze_until,
        backbone_lr_scale=args.backbone_lr_scale,
        device=args.device,
        threads=args.threads,
        resume=args.resume,
        state_every=args.state_every,
        time_limit=args.time_limit,
        preload=args.preload,
        command=command_line(args),
    )


def command_line(args: argparse.Namespace) -> str:
    """The run as one reproducible command (every option that has a value)."""
    words = ["fewshot-gui", args.command or "meta-train", args.data_dir]
    for key, value in sorted(vars(args).items()):
        if key in ("command", "data_dir") or value is None or value is False or value == []:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, list):
            words += [word for item in value for word in (flag, str(item))]
        else:
            words += [flag] if value is True else [flag, str(value)]
    return shlex.join(words)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run(args: argparse.Namespace) -> int:
    from fewshot_gui.core.types import Progress
    from fewshot_gui.training.meta_train import meta_train

    config = _config(args)
    tty = sys.stderr.isatty()
    last_val: float | None = None
    last_print = 0.0
    for item in meta_train(config):
        if isinstance(item, Progress):
            now = time.monotonic()
            if tty and now - last_print < 0.2 and item.done < item.total:
                continue
            if not tty and now - last_print < 30 and item.done < item.total:
                continue
            last_print = now
            val = f"  val {last_val:.1%}" if last_val is not None else ""
            line = (
                f"{item.done}/{item.total}  {item.items_per_s:.2f} it/s  "
                f"ETA {_eta(item.eta_s)}  {item.stage}{val}"
            )
            print(
                f"\r{line}   " if tty else line,
                end="" if tty else "\n",
                file=sys.stderr,
                flush=True,
            )
        elif "val_accuracy" in item:
            last_val = item["val_accuracy"]
            mark = "  (best, saved)" if item["best"] else ""
            print(
                f"{chr(10) if tty else ''}validation at {item['episode']}: "
                f"{item['val_accuracy']:.2%} ± {item['val_ci95']:.2%}{mark}",
                file=sys.stderr,
            )
        elif "resumed_at" in item:
            print(f"resuming at meta-iteration {item['resumed_at']}", file=sys.stderr)
        elif item.get("done"):
            if tty:
                print(file=sys.stderr)
            best = item["best"]
            acc = f", best validation {best['val_accuracy']:.2%}" if best else ""
            print(
                f"wrote {item['checkpoint']} ({item['episodes']} meta-iterations on "
                f"{item['device']}, {item['wall_s']:.0f} s{acc})",
                file=sys.stderr,
            )
    return 0
