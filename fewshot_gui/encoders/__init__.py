"""Encoders: image → embedding networks with their preprocessing (registry, backbones, ImageNet
weights, the checkpoint format). No Qt."""

from fewshot_gui.encoders.registry import (
    EncoderSpec,
    LoadedEncoder,
    default_encoder_name,
    list_encoders,
    load_encoder,
    register_encoder,
    resolve_encoder,
)

__all__ = [
    "EncoderSpec",
    "LoadedEncoder",
    "default_encoder_name",
    "list_encoders",
    "load_encoder",
    "register_encoder",
    "resolve_encoder",
]
