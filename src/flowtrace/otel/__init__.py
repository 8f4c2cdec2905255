"""OpenTelemetry adapters: the flow context on every span, flow events as span events.

* :class:`FlowContextSpanProcessor` stamps the flow context (tenant, user, purpose,
  region, correlation id, subject, legal basis) onto every span started inside a scope,
  whatever instrumentation started it. Add it to your own ``TracerProvider``, or let
  :func:`flowtrace.configure` build one that has it.
* :func:`span_event_observer` turns flow events (cross-tenant scopes, tenant switches,
  mismatches, refused messages...) into span events named ``flowtrace.<kind>`` on the
  current span. It is registered by default and never raises.
* :class:`JsonLinesSpanExporter` writes finished spans to a file, one JSON object a line.
* :class:`ScrubbingSpanExporter` / :class:`ScrubbingSpanProcessor` (and the log-record
  equivalents) scrub span names, attributes, events, links and status messages before any
  exporter sees them. :func:`flowtrace.configure` wraps every exporter it is given with
  :class:`ScrubbingSpanExporter`; use these directly with a ``TracerProvider`` of your own.

The attribute and event names are a stable format: see ``docs/spec/attributes.md``.

Owns span attribute names, the span-event observer, span/log processors and exporters,
scrubbing before export, building the TracerProvider ``configure()`` wires, and the tracer
in force (:func:`get_tracer`). May import: :mod:`flowtrace.flowcontext`,
:mod:`flowtrace.scrubbing`, :mod:`flowtrace._settings`, :mod:`flowtrace.errors`, the
OpenTelemetry API and SDK.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from .._tracing import get_tracer, tracer_provider
from ._attributes import (
    ATTRIBUTES,
    EVENT_PREFIX,
    SERVICE_REGION,
    flow_attributes,
    span_event_observer,
)
from ._processors import FlowContextSpanProcessor, JsonLinesSpanExporter
from ._scrub import (
    CATEGORIES_ATTRIBUTE,
    COUNT_ATTRIBUTE,
    ScrubbingLogExporter,
    ScrubbingLogRecordProcessor,
    ScrubbingSpanExporter,
    ScrubbingSpanProcessor,
    scrub_span,
)

# Internal interface for flowtrace._configure (explicit re-export, not in __all__).
from ._setup import build_tracer_provider as build_tracer_provider

_INTERNAL_INTERFACE = frozenset({"build_tracer_provider"})
"""Names re-exported for flowtrace._configure only."""

__all__ = [
    "ATTRIBUTES",
    "CATEGORIES_ATTRIBUTE",
    "COUNT_ATTRIBUTE",
    "EVENT_PREFIX",
    "FlowContextSpanProcessor",
    "JsonLinesSpanExporter",
    "SERVICE_REGION",
    "ScrubbingLogExporter",
    "ScrubbingLogRecordProcessor",
    "ScrubbingSpanExporter",
    "ScrubbingSpanProcessor",
    "flow_attributes",
    "get_tracer",
    "scrub_span",
    "span_event_observer",
    "tracer_provider",
]
