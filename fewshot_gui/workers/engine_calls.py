"""What the labeling worker asks of the engine, in its own thread: a session, the names to offer
(methods, encoders and why an encoder cannot be used now) and plain messages for errors. No Qt;
the engine is imported only when a function is called."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fewshot_gui.core.names import FALLBACK_METHODS

SessionFactory = Callable[[dict], Any]


def default_session_factory(settings: dict) -> Any:
    """Build a real :class:`LabelingSession` (imports torch; called in the worker thread)."""
    if settings.get("result"):  # a labeling result's stored embeddings (ui/result_controller.py)
        from fewshot_gui.cluster.result import LabelingResult
        from fewshot_gui.cluster.stored import StoredSession

        return StoredSession(LabelingResult.open(settings["result"]))
    from fewshot_gui.session import LabelingSession

    return LabelingSession(
        encoder=settings.get("encoder") or None,
        method=settings.get("method") or "auto",
        device=settings.get("device") or "auto",
        cache_dir=settings.get("cache_dir"),
        unknown_threshold=settings.get("unknown_threshold"),
        adapter_options=settings.get("adapter_options"),
    )


def available_choices() -> tuple[list[str], list[str]]:
    """Adapter names and encoder names from the registries (imports the engine; worker thread)."""
    methods, encoders = list(FALLBACK_METHODS), []
    try:
        from fewshot_gui.adapters.registry import adapter_names

        methods = list(adapter_names())
    except Exception:  # registry not importable: keep the fallback list
        pass
    try:
        from fewshot_gui.encoders.registry import list_encoders

        encoders = [spec.name for spec in list_encoders()]
    except Exception:
        pass
    if "auto" in methods:
        methods.remove("auto")
        methods.insert(0, "auto")
    return methods, encoders


def unusable_encoders(names: Sequence[str]) -> dict[str, str]:
    """Encoder name → why it cannot be used right now (its ``check_available()``: e.g. ImageNet
    weights not on this machine), for the encoders of ``names`` that cannot; loads no model."""
    try:
        from fewshot_gui.encoders.catalog import find_encoder
    except Exception:
        return {}
    reasons = {}
    for name in names:
        try:
            spec = find_encoder(name)
            reason = spec.check_available() if spec is not None else "not registered"
        except Exception as error:  # a plug-in's check that fails is a reason too
            reason = f"its availability check failed ({type(error).__name__}: {error})"
        if reason:
            reasons[name] = " ".join(str(reason).split())
    return reasons


def method_help() -> dict[str, str]:
    """One help line per method, from the adapter registry (empty when it cannot be imported)."""
    try:
        from fewshot_gui.adapters.registry import method_help as registry_help

        return registry_help()
    except Exception:
        return {}


def is_plain_error(error: BaseException) -> bool:
    """The engine's own error or an OS error: its message is for the user, not a traceback."""
    from fewshot_gui.core.errors import FewShotError

    return isinstance(error, (FewShotError, OSError))


def user_message(error: BaseException) -> str:
    """One line for the user about ``error``."""
    from fewshot_gui.core.errors import FewShotError

    if isinstance(error, FewShotError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    return f"unexpected error: {type(error).__name__}: {error}"
