"""Meta-training speed: our ``meta-train`` inner step beside a plain PyTorch reference loop.

Prints ProtoNet Conv-4 episodes/s (60-way 5-shot 5-query, 28×28) and MAML meta-iterations/s
(32 tasks, 5-way 1-shot, 5 inner steps, second order) for both, in the same run, on the same
machine. The reference loops are the straightforward implementations (per-task Python loop,
``functional_call`` + ``autograd.grad``), fed random tensors, so they measure compute only.

    python benchmarks/bench_meta_train.py [--data DIR] [--threads N] [--proto-episodes 10]
        [--maml-iterations 2] [--first-order]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call

from fewshot_gui.bench.synthetic import make_class_folders
from fewshot_gui.core.device import plan_device
from fewshot_gui.encoders.backbones import Conv4
from fewshot_gui.training.episodic_run import EpisodicRun
from fewshot_gui.training.meta_train import MetaTrainConfig


def synthetic(root: Path, classes: int = 64, images: int = 10) -> Path:
    """``classes`` folders of ``images`` 28×28 grayscale images (the shared synthetic maker)."""
    make_class_folders(root, classes, images, size=(28, 28), mode="L")
    return root


def timed(step, n: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - start)


def reference_protonet(n: int) -> float:
    model = Conv4(in_channels=1, image_size=28)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    way, shot, query = 60, 5, 5
    x = torch.randn(way * (shot + query), 1, 28, 28)
    y = torch.arange(way).repeat_interleave(query)

    def step() -> None:
        z = model(x)
        support = z[: way * shot].view(way, shot, -1).mean(1)
        logits = -torch.cdist(z[way * shot :], support).pow(2)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed(step, n)


def reference_maml(n: int, first_order: bool) -> float:
    model = torch.nn.Sequential(Conv4(in_channels=1, image_size=28), torch.nn.Linear(64, 5))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    tasks, way = 32, 5
    xs, xq = torch.randn(tasks, way, 1, 28, 28), torch.randn(tasks, way, 1, 28, 28)
    y = torch.arange(way)

    def step() -> None:
        opt.zero_grad()
        for t in range(tasks):
            params = dict(model.named_parameters())
            for _ in range(5):
                loss = F.cross_entropy(functional_call(model, params, (xs[t],)), y)
                grads = torch.autograd.grad(
                    loss, list(params.values()), create_graph=not first_order
                )
                params = {k: p - 0.4 * g for (k, p), g in zip(params.items(), grads, strict=True)}
            (F.cross_entropy(functional_call(model, params, (xq[t],)), y) / tasks).backward()
        opt.step()

    return timed(step, n)


def ours(data: str, n: int, **options: object) -> float:
    config = MetaTrainConfig(
        data_dir=data,
        out=str(Path(tempfile.mkdtemp()) / "b.pt"),
        image_size=28,
        val_fraction=0,
        **options,
    )  # type: ignore[arg-type]
    run = EpisodicRun(config, plan_device("cpu"))
    return timed(run.step, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="class folders (default: synthetic 28×28, made here)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--proto-episodes", type=int, default=10)
    parser.add_argument("--maml-iterations", type=int, default=1)
    parser.add_argument("--first-order", action="store_true", help="MAML rows first order")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = args.data or str(synthetic(Path(tempfile.mkdtemp()) / "data"))
    print(f"torch {torch.__version__}, {args.threads} threads, data {data}")
    ref = reference_protonet(args.proto_episodes)
    mine = ours(data, args.proto_episodes, method="metric", way=60, shot=5, query=5)
    print(
        f"ProtoNet Conv-4 60-way 5-shot 5-query 28x28: ours {mine:.2f} episodes/s, "
        f"reference {ref:.2f} episodes/s, ratio {mine / ref:.2f}"
    )
    method = "fomaml" if args.first_order else "maml"
    ref = reference_maml(args.maml_iterations, args.first_order)
    mine = ours(
        data,
        args.maml_iterations,
        method=method,
        way=5,
        shot=1,
        query=1,
        meta_batch=32,
        inner_steps=5,
        adapt="full",
    )
    print(
        f"{method.upper()} Conv-4 32 tasks 5-way 1-shot 5 inner steps: ours {mine:.3f} it/s, "
        f"reference {ref:.3f} it/s, ratio {mine / ref:.2f}"
    )


if __name__ == "__main__":
    main()
