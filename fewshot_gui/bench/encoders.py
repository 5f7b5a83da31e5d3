"""Encoders that exist for benchmarks only, registered under names of their own (the registry
refuses duplicates, so each is registered once per process): an architecture with random weights
(throughput without downloading anything) and a cheap encoder with full-size embeddings (memory)."""

from __future__ import annotations

from fewshot_gui.core.errors import UsageError


def random_weights_encoder(name: str) -> str:
    """Register ``<name>-random-weights``: ``name``'s architecture and preprocessing with random
    weights (nothing downloaded); returns the new name."""
    import dataclasses

    from fewshot_gui.encoders.checkpoint import build_architecture
    from fewshot_gui.encoders.registry import encoder_names, register_encoder, resolve_encoder

    spec = resolve_encoder(name)
    if spec.arch_name is None:
        raise UsageError(f"--random-weights: {name} names no architecture")
    random_name = f"{spec.name}-random-weights"
    if random_name not in encoder_names():
        arch, kwargs = spec.arch_name, dict(spec.arch_kwargs)
        register_encoder(
            dataclasses.replace(
                spec,
                name=random_name,
                description=f"{spec.name} architecture, random weights (benchmarks only)",
                weights_source="random initialisation",
                build=lambda: build_architecture(arch, kwargs).eval(),
                check_available=lambda: None,
                checkpoint_path=None,
            )
        )
    return random_name


MEMORY_CHECK_SIZE = 32
"""Image size of the ``--memory-check`` encoder (Conv-4 at 32×32: 256 features)."""
MEMORY_CHECK_DIM = 1280
"""Embedding size of the ``--memory-check`` encoder: that of the default encoder (photos)."""


def memory_check_encoder() -> str:
    """Register ``conv4-memory-check``: Conv-4 with random weights at 32×32 px, then a random
    linear map to :data:`MEMORY_CHECK_DIM` (the default encoder's embedding size): cheap to run
    on 100,000 images, with embeddings as large as the real ones."""
    import dataclasses

    from torch import nn

    from fewshot_gui.data.preprocess import Preprocessing
    from fewshot_gui.encoders.checkpoint import build_architecture
    from fewshot_gui.encoders.registry import encoder_names, register_encoder, resolve_encoder

    name = "conv4-memory-check"
    if name not in encoder_names():
        size = MEMORY_CHECK_SIZE
        kwargs = {"in_channels": 3, "image_size": size}

        def build() -> nn.Module:
            conv = build_architecture("conv4", kwargs)
            return nn.Sequential(conv, nn.Linear(conv.embed_dim, MEMORY_CHECK_DIM)).eval()

        register_encoder(
            dataclasses.replace(
                resolve_encoder("conv4"),
                name=name,
                description=f"Conv-4, random weights, 32×32, {MEMORY_CHECK_DIM}-d (memory check)",
                preprocessing=Preprocessing(resize=size, crop=size, interpolation="bilinear"),
                embed_dim=MEMORY_CHECK_DIM,
                build=build,
                arch_kwargs=kwargs,
            )
        )
    return name
