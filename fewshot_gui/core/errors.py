"""User-facing errors: each carries a message a person can act on (no traceback needed)."""

from __future__ import annotations


class FewShotError(Exception):
    """Base class for errors shown to the user as one plain line."""


class UsageError(FewShotError):
    """The input as a whole is unusable (missing folder, no class with a readable example, …)."""


class DecodeError(FewShotError):
    """One file could not be read as an image; ``str(err)`` is the plain reason."""


class WeightsUnavailableError(FewShotError):
    """An encoder's weights are not on this machine and cannot be downloaded (e.g. offline)."""


class CheckpointError(FewShotError):
    """A checkpoint file is missing, corrupt or of an unknown format version."""
