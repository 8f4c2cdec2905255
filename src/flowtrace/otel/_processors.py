"""Span processors and exporters: the flow context on every span, spans as JSON lines."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import _settings
from ..flowcontext import current
from ._attributes import SERVICE_REGION, _attributes_of

__all__ = ["FlowContextSpanProcessor", "JsonLinesSpanExporter"]

_log = logging.getLogger("flowtrace.otel")


class FlowContextSpanProcessor(SpanProcessor):
    """Stamp the current flow context onto every span when it starts.

    Spans started outside any scope are left alone. Like every OTel processor it never
    raises: a failure is logged on the ``flowtrace.otel`` logger and the span goes on.
    The configured region (``flowtrace.configure(region=...)``) is stamped as
    ``flowtrace.service.region``.

    Example::

        from opentelemetry.sdk.trace import TracerProvider

        import flowtrace as ft
        from flowtrace.otel import FlowContextSpanProcessor

        provider = TracerProvider()                       # your own provider
        provider.add_span_processor(FlowContextSpanProcessor())
        ft.configure(tracer_provider=provider)
        tracer = provider.get_tracer("app")
        with ft.context(tenant="acme"), tracer.start_as_current_span("query") as span:
            assert span.attributes["flowtrace.tenant"] == "acme"
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attributes = _attributes_of(current())
            if attributes:
                span.set_attributes(attributes)
            region = _settings.settings().region
            if region is not None:
                span.set_attribute(SERVICE_REGION, region)
        except Exception:  # a processor must never break the traced code
            _log.exception("flowtrace could not stamp the flow context onto a span")

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.context
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": format(ctx.trace_id, "032x") if ctx else None,
        "span_id": format(ctx.span_id, "016x") if ctx else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "timestamp": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
        "resource": dict(span.resource.attributes),
    }


class JsonLinesSpanExporter(SpanExporter):
    """Append finished spans to ``path``, one JSON object per line (ids in hex).

    Handy for demos, local debugging and tests; thread-safe. Attribute values that are
    not JSON types are written as their ``str()``.

    Example::

        import json
        from pathlib import Path

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        from flowtrace.otel import JsonLinesSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter("spans.jsonl")))
        with provider.get_tracer("app").start_as_current_span("work"):
            pass
        first = Path("spans.jsonl").read_text().splitlines()[0]
        assert json.loads(first)["name"] == "work"
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        try:
            lines = "".join(
                json.dumps(_span_to_dict(s), default=str, ensure_ascii=False) + "\n"
                for s in spans
            )
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(lines)
        except Exception:
            _log.exception("flowtrace could not write spans to %s", self.path)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._closed = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
