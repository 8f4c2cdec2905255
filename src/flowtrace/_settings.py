"""The settings leaf: what :func:`flowtrace.configure` set, readable from any layer.

Lower layers (scrubbing, audit, lineage, otel, decorators) read :func:`settings` at call
time; only :mod:`flowtrace._configure` (and the test helpers in :mod:`flowtrace.testing`)
install new settings, through :func:`install`. Nothing here imports another flowtrace
module but :mod:`flowtrace.errors`, and nothing registers hooks: ``configure()`` wires the
pieces from the top.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["Settings", "install", "settings", "swap_tracer_provider"]


@dataclass(frozen=True)
class Settings:
    """What :func:`flowtrace.configure` set. Read it with :func:`flowtrace.settings`.

    >>> import flowtrace as ft
    >>> ft.settings().service
    'unknown_service'
    """

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
    """Lineage settings: a ``flowtrace.lineage.LineageConfig`` (``configure(lineage=...)``)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Capability-specific settings."""
    span_exporters: tuple[Any, ...] = ()
    """OTel ``SpanExporter`` instances spans are sent to (flowtrace builds the provider)."""
    console_spans: bool = False
    """Also print finished spans to stdout (OTel's ``ConsoleSpanExporter``)."""
    spans_file: str | Path | None = None
    """Also append finished spans to this file as JSON lines."""
    set_global: bool = False
    """Also install the provider flowtrace builds as OTel's global tracer provider."""
    trust_domain: tuple[str, ...] = ()
    """Hosts (``api.internal``, ``*.corp.example``) that may receive identity baggage."""
    residency: Any = None
    """The residency guard's policy (``configure(residency=...)``; ``None``: no policy)."""
    flow_metrics: Any = False
    """Count observed flows on ``flowtrace.map.flows`` in the provider flowtrace builds
    (``True``: OTel's global meter provider; or a ``MeterProvider``)."""


_lock = threading.Lock()
_settings = Settings()


def settings() -> Settings:
    """The current settings (defaults until :func:`flowtrace.configure` is called).

    Example::

        import flowtrace as ft

        ft.configure(service="billing")
        assert ft.settings().service == "billing"
        assert ft.settings().tracer_provider is None     # no exporters: no-op tracing
    """
    return _settings


def install(new: Settings) -> Settings:
    """Make ``new`` the settings in force; returns the previous ones (internal interface
    for :mod:`flowtrace._configure` and :mod:`flowtrace.testing`)."""
    global _settings
    with _lock:
        previous, _settings = _settings, new
    return previous


def update(**changes: Any) -> Settings:
    """Replace some fields of the settings in force (internal interface for capabilities
    that own one option, e.g. ``flowtrace.map.configure_residency``); returns the new ones.
    Callers validate the values themselves."""
    global _settings
    with _lock:
        _settings = replace(_settings, **changes)
        return _settings


def swap_tracer_provider(provider: Any) -> Any:
    """Install ``provider`` temporarily (test capture); returns the one in force before.

    Unlike ``configure(tracer_provider=...)`` it never shuts down a provider flowtrace
    built, so swapping back restores it intact.
    """
    global _settings
    with _lock:
        previous = _settings.tracer_provider
        _settings = replace(_settings, tracer_provider=provider)
    return previous
