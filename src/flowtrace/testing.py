"""Testing helpers and the flowtrace pytest plugin (entry point ``pytest11``)."""

from __future__ import annotations

__all__ = ["reset"]


def reset() -> None:
    """Reset flowtrace's process-wide state (settings, observers) to defaults."""
    from . import _config

    _config._reset()
