"""Where flowtrace gets its tracer: the provider carried in the settings, else OTel's global.

Every capability that opens spans calls :func:`get_tracer` at call time (not import time),
so ``flowtrace.configure(tracer_provider=...)`` and test fixtures take effect immediately.
OTel's global provider is read only through its public API (``get_tracer_provider()``):
once seen set it is kept (OTel sets it once per process); seen unset, that answer is kept
until the next ``flowtrace.configure()`` or ``flowtrace.testing.reset()`` (see
docs/decorators.md), because asking OTel costs more than a whole decorated call.

May import: :mod:`flowtrace._settings`, the OpenTelemetry API.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

from ._settings import settings
from ._version import __version__

__all__ = ["active_provider", "get_tracer", "global_provider", "refresh", "tracer_provider"]

# id(provider) -> (provider, tracer); the provider is kept so its id cannot be reused.
_cache: dict[int, tuple[trace.TracerProvider, trace.Tracer]] = {}
# [OTel's global provider once seen set, whether it was seen unset since the last refresh]
_global: list[trace.TracerProvider | None] = [None]
_seen_unset: list[bool] = [False]
_NOOP = (ProxyTracerProvider, NoOpTracerProvider)


def refresh() -> None:
    """Look at OTel's global provider again on next use (``configure()``, ``reset()``)."""
    _seen_unset[0] = False


def global_provider() -> trace.TracerProvider | None:
    """OTel's global provider, or ``None`` while it is the default proxy (see above)."""
    found = _global[0]
    if found is not None or _seen_unset[0]:
        return found
    provider = trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        _seen_unset[0] = True
        return None
    _global[0] = provider
    return provider


def active_provider() -> trace.TracerProvider | None:
    """The provider spans go to, or ``None`` when tracing is not configured (no-op)."""
    provider = settings().tracer_provider
    if provider is None:
        provider = global_provider()
    return None if provider is None or isinstance(provider, _NOOP) else provider


def tracer_provider() -> trace.TracerProvider:
    """The provider flowtrace uses: the configured one, else OTel's global one (or its proxy).

    >>> import flowtrace as ft
    >>> ft.otel.tracer_provider() is not None
    True
    """
    provider = settings().tracer_provider
    if provider is None:
        provider = global_provider()
    return provider if provider is not None else trace.get_tracer_provider()


def get_tracer() -> trace.Tracer:
    """A tracer named ``flowtrace`` from the provider in force.

    >>> import flowtrace as ft
    >>> ft.otel.get_tracer() is not None
    True
    """
    provider = tracer_provider()
    cached = _cache.get(id(provider))
    if cached is None or cached[0] is not provider:
        cached = (provider, provider.get_tracer("flowtrace", __version__))
        _cache[id(provider)] = cached
    return cached[1]
