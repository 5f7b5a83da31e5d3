"""Few-shot adapters: one file per method behind :class:`~fewshot_gui.adapters.base.Adapter`.

Importing this package registers every method; use :func:`create_adapter` by name.
"""

from fewshot_gui.adapters import auto as _auto  # noqa: F401  (after the methods it picks from)
from fewshot_gui.adapters import maml as _maml  # noqa: F401  (registers)
from fewshot_gui.adapters import memory as _memory  # noqa: F401
from fewshot_gui.adapters import metalstm as _metalstm  # noqa: F401
from fewshot_gui.adapters import metric as _metric  # noqa: F401
from fewshot_gui.adapters.base import Adapter
from fewshot_gui.adapters.registry import (
    adapter_family,
    adapter_names,
    create_adapter,
    register_adapter,
)

__all__ = ["Adapter", "adapter_family", "adapter_names", "create_adapter", "register_adapter"]
