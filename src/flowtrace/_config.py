"""Process-wide settings set by :func:`flowtrace.configure`.

Nothing here is required: with nothing configured flowtrace still works (tracing is a
no-op, scrubbing uses the built-in detectors, no audit log). ``configure`` validates its
arguments and raises :class:`~flowtrace.errors.ConfigError` naming the bad one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConfigError

__all__ = ["Settings", "configure", "settings"]


@dataclass(frozen=True)
class Settings:
    """What :func:`flowtrace.configure` set. Read it with :func:`flowtrace.settings`."""

    service: str = "unknown_service"
    """Service name, used as the OTel ``service.name`` resource attribute."""
    region: str | None = None
    """Region this process runs in (stamped on spans as ``flowtrace.service.region``)."""
    tracer_provider: Any = None
    """The OTel TracerProvider flowtrace created or was given (``None``: the global one)."""
    scrubber: Any = None
    """Default scrubber used by every logging/telemetry adapter (``None``: built-in default)."""
    audit_log: Any = None
    """Audit log that receives flow events (cross-tenant, mismatches, decrypts...)."""
    lineage: Any = None
    """Lineage settings (a ``flowtrace.lineage.LineageConfig``; set by ``lineage.configure``)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Capability-specific settings."""


_lock = threading.Lock()
_settings = Settings()
_hooks: list[Any] = []


def settings() -> Settings:
    """The current settings."""
    return _settings


def configure(**options: Any) -> Settings:
    """Configure flowtrace for this process. Unknown options raise :class:`ConfigError`.

    Options: ``service``, ``region``, ``tracer_provider``, ``scrubber``, ``audit_log``, plus
    those documented by each capability (see docs/). Calling it again updates only the
    options given.
    """
    global _settings
    known = {f for f in Settings.__dataclass_fields__ if f != "extras"}
    with _lock:
        new = _settings
        for name, value in options.items():
            if name in known:
                if name == "service" and (not isinstance(value, str) or not value):
                    raise ConfigError("configure(service=...) must be a non-empty str")
                new = replace(new, **{name: value})
            else:
                raise ConfigError(
                    f"configure() got an unknown option {name!r}; "
                    f"known options are {', '.join(sorted(known))}"
                )
        _settings = new
    return new


def _reset() -> None:
    """Back to defaults (used by flowtrace.testing.reset)."""
    global _settings
    with _lock:
        _settings = Settings()
