"""The one place PyJWT is imported (lazily, as the ``jwt`` extra)."""

from __future__ import annotations

from typing import Any

from ..errors import require_extra

__all__ = ["jwt"]


def jwt() -> Any:
    """The ``jwt`` module, or :class:`~flowtrace.errors.MissingExtraError` naming the extra."""
    require_extra("cryptography", "jwt", "flowtrace.trust")
    return require_extra("jwt", "jwt", "flowtrace.trust (transaction tokens)")
