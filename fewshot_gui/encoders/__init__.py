"""Encoders: image → embedding networks with their preprocessing (one table of built-ins and
plug-ins, ImageNet weights, the checkpoint format). No Qt."""

from fewshot_gui.encoders.catalog import GROUP, encoder_names, register_encoder, reload_encoders
from fewshot_gui.encoders.registry import (
    default_encoder_name,
    list_encoders,
    load_encoder,
    resolve_encoder,
)
from fewshot_gui.encoders.spec import EncoderSpec, LoadedEncoder

__all__ = [
    "GROUP",
    "EncoderSpec",
    "LoadedEncoder",
    "default_encoder_name",
    "encoder_names",
    "list_encoders",
    "load_encoder",
    "register_encoder",
    "reload_encoders",
    "resolve_encoder",
]
