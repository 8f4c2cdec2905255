"""Where flowtrace gets its tracer: the configured provider, else OTel's global one.

Every capability that opens spans calls :func:`get_tracer` at call time (not import time),
so ``flowtrace.configure(tracer_provider=...)`` and test fixtures take effect immediately
without touching OTel's set-once global.
"""

from __future__ import annotations

from opentelemetry import trace

from ._settings import settings
from ._version import __version__

__all__ = ["get_tracer", "tracer_provider"]

# id(provider) -> (provider, tracer); the provider is kept so its id cannot be reused.
_cache: dict[int, tuple[trace.TracerProvider, trace.Tracer]] = {}


def tracer_provider() -> trace.TracerProvider:
    """The provider flowtrace uses: ``configure(tracer_provider=...)`` or OTel's global one."""
    provider = settings().tracer_provider
    return provider if provider is not None else trace.get_tracer_provider()


def get_tracer() -> trace.Tracer:
    """A tracer named ``flowtrace`` from the provider in force."""
    provider = tracer_provider()
    cached = _cache.get(id(provider))
    if cached is None or cached[0] is not provider:
        cached = (provider, provider.get_tracer("flowtrace", __version__))
        _cache[id(provider)] = cached
    return cached[1]
