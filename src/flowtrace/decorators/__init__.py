"""Decorators: ``@handler`` and ``@consumer``, the flow context at every entry point.

Owns resolving a request's or a message's flow context, refusing what must be refused
(missing tenant, tenant mismatch, tenants not allowed), and the span around the call.
The sync/async/generator wrapping itself is :mod:`flowtrace._wrapping`.

May import: :mod:`flowtrace.flowcontext`, :mod:`flowtrace.propagation`,
:mod:`flowtrace.otel` (attribute names, the tracer in force), :mod:`flowtrace._wrapping`,
:mod:`flowtrace._settings`, :mod:`flowtrace.errors`.
"""

from __future__ import annotations

from ._decorators import HeadersSource, Resolver, consumer, handler

__all__ = ["HeadersSource", "Resolver", "consumer", "handler"]
