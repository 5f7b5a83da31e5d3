"""Few-shot adapters: one module per method behind :class:`~fewshot_gui.adapters.base.Adapter`.

Methods are found through the entry-point group ``fewshot_gui.adapters`` (built-ins and plug-ins
alike, see :mod:`~fewshot_gui.adapters.registry`); use :func:`create_adapter` by name.
"""

from fewshot_gui.adapters.base import Adapter
from fewshot_gui.adapters.registry import (
    adapter_class,
    adapter_family,
    adapter_names,
    create_adapter,
    register_adapter,
)

__all__ = [
    "Adapter",
    "adapter_class",
    "adapter_family",
    "adapter_names",
    "create_adapter",
    "register_adapter",
]
