"""Scrub OpenTelemetry spans and log records before any exporter sees them.

Two shapes, use whichever fits the pipeline:

* :class:`ScrubbingSpanExporter` wraps an exporter (``BatchSpanProcessor(
  ScrubbingSpanExporter(OTLPSpanExporter()))``) — scrubbing happens on the export thread,
  off the request path;
* :class:`ScrubbingSpanProcessor` wraps a processor, so every processor behind it gets the
  scrubbed copy.

Span names, attributes, event names and attributes (including ``exception.message`` and
``exception.stacktrace``), link attributes and status descriptions are scrubbed. A span
with scrubbed content carries ``flowtrace.scrub.count`` (int) and
``flowtrace.scrub.categories`` (sorted list) — see docs/spec/scrubbing-attributes.md. In
report-only mode nothing is changed but those two attributes are still added.

For logs, :class:`ScrubbingLogRecordProcessor` scrubs a record's body and attributes in
place before handing it to the processor it wraps; :class:`ScrubbingLogExporter` does the
same on a copy at export time.

An exporter that cannot scrub never exports: failures drop the batch (fail closed) and are
reported through the ``flowtrace.scrubbing`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from ..scrubbing import Scrubber, ScrubReport, default_scrubber

__all__ = [
    "COUNT_ATTRIBUTE",
    "CATEGORIES_ATTRIBUTE",
    "ScrubbingLogExporter",
    "ScrubbingLogRecordProcessor",
    "ScrubbingSpanExporter",
    "ScrubbingSpanProcessor",
    "scrub_span",
]

COUNT_ATTRIBUTE = "flowtrace.scrub.count"
"""Span attribute: how many values the scrubber replaced on this span.

Example::

    from flowtrace.otel import COUNT_ATTRIBUTE

    assert COUNT_ATTRIBUTE == "flowtrace.scrub.count"   # e.g. 2 values replaced on a span
"""
CATEGORIES_ATTRIBUTE = "flowtrace.scrub.categories"
"""Span attribute: the data categories of the values scrubbed from this span.

Example::

    from flowtrace.otel import CATEGORIES_ATTRIBUTE

    assert CATEGORIES_ATTRIBUTE == "flowtrace.scrub.categories"   # e.g. ("pci", "pii")
"""

_log = logging.getLogger("flowtrace.scrubbing")

_MULTILINE_KEYS = frozenset({"exception.stacktrace", "code.stacktrace"})


class _Scrub:
    """Accumulates one report across the pieces of one span or log record."""

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber
        self.report = ScrubReport()

    def text(self, value: str, field: str) -> str:
        out, rep = self.scrubber.scrub_with_report_text(value, field=field)
        self.report += rep
        return out

    def multiline(self, value: str, field: str) -> str:
        # Scanned whole (a PEM key spans lines), then controls but LF neutralized.
        out, rep = self.scrubber.scrub_with_report_text(value, field=field, multiline=True)
        self.report += rep
        return out

    def any(self, value: Any) -> Any:
        out, rep = self.scrubber.scrub_with_report(value)
        self.report += rep
        return out

    def attributes(self, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
        if not attrs:
            return {}
        out: dict[str, Any] = {}
        for key, value in attrs.items():
            if key in _MULTILINE_KEYS and isinstance(value, str):
                out[key] = self.multiline(value, key)
                continue
            scrubbed = self.any({key: value})
            if key not in scrubbed:
                continue  # dropped by a Drop strategy
            out[key] = _attribute_value(scrubbed[key], value)
        return out


def _attribute_value(new: Any, old: Any) -> Any:
    """Keep OTel attribute types valid: homogeneous sequences of primitives."""
    if isinstance(new, list | tuple):
        if any(type(a) is not type(b) for a, b in zip(new, old, strict=False)):
            return tuple(str(x) for x in new)
        return tuple(new)
    return new


def _report_attributes(report: ScrubReport) -> dict[str, Any]:
    """The ``flowtrace.scrub.*`` attributes for a span or log record (none if clean)."""
    if not (report.total or report.budget_exceeded):
        return {}
    return {
        COUNT_ATTRIBUTE: report.total,
        CATEGORIES_ATTRIBUTE: tuple(sorted(report.by_category())),
    }


def scrub_span(span: ReadableSpan, scrubber: Scrubber | None = None) -> ReadableSpan:
    """A scrubbed copy of a finished span (the original is not modified).

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from flowtrace.otel import scrub_span

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("demo").start_as_current_span("signup") as span:
            span.set_attribute("user.email", "ana@example.com")
        clean = scrub_span(exporter.get_finished_spans()[0])
        assert clean.attributes["user.email"] == "[REDACTED:email]"
    """
    scrubber = _resolve(scrubber)
    s = _Scrub(scrubber)
    name = s.text(span.name, "span.name")
    attributes = s.attributes(span.attributes)
    events = [
        Event(s.text(e.name, "event.name"), s.attributes(e.attributes), e.timestamp)
        for e in span.events
    ]
    links = [Link(link.context, s.attributes(link.attributes)) for link in span.links]
    status = span.status
    if status.description:
        status = Status(status.status_code, s.text(status.description, "status.description"))
    if scrubber.report_only:
        name, events, links, status = span.name, list(span.events), list(span.links), span.status
        attributes = dict(span.attributes or {})
    attributes.update(_report_attributes(s.report))
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _resolve(scrubber: Scrubber | None) -> Scrubber:
    return scrubber if scrubber is not None else default_scrubber()


class ScrubbingSpanExporter(SpanExporter):
    """Wraps a span exporter; spans are scrubbed before ``inner.export`` sees them.

    With ``scrubber=None`` the scrubber set by ``flowtrace.configure(scrubber=...)`` (or the
    built-in default) is looked up at export time.

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        from flowtrace.otel import ScrubbingSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(ScrubbingSpanExporter(ConsoleSpanExporter())))
    """

    def __init__(self, inner: SpanExporter, scrubber: Scrubber | None = None) -> None:
        self.inner = inner
        self.scrubber = scrubber

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Scrub then export; if scrubbing fails, nothing is exported (fail closed)."""
        try:
            scrubber = _resolve(self.scrubber)
            clean = [scrub_span(span, scrubber) for span in spans]
        except Exception:
            _log.exception("flowtrace could not scrub %d span(s); they were dropped", len(spans))
            return SpanExportResult.FAILURE
        return self.inner.export(clean)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return bool(self.inner.force_flush(timeout_millis))


class ScrubbingSpanProcessor(SpanProcessor):
    """Wraps a span processor; ``inner.on_end`` receives the scrubbed copy.

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        from flowtrace.otel import ScrubbingSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(ScrubbingSpanProcessor(SimpleSpanProcessor(ConsoleSpanExporter())))
    """

    def __init__(self, inner: SpanProcessor, scrubber: Scrubber | None = None) -> None:
        self.inner = inner
        self.scrubber = scrubber

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Forwarded unchanged (nothing leaves the process at start)."""
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Scrub, then forward; a span that cannot be scrubbed is dropped."""
        try:
            clean = scrub_span(span, _resolve(self.scrubber))
        except Exception:
            _log.exception("flowtrace could not scrub span %r; it was dropped", span.name)
            return
        self.inner.on_end(clean)

    def shutdown(self) -> None:
        """Shut the wrapped processor down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped processor."""
        return bool(self.inner.force_flush(timeout_millis))


def _scrub_log_record(record: Any, scrubber: Scrubber) -> ScrubReport:
    """Scrub an API ``LogRecord`` (body, attributes) in place; returns the report."""
    s = _Scrub(scrubber)
    body = record.body
    new_body = s.text(body, "body") if isinstance(body, str) else s.any(body)
    attrs = s.attributes(record.attributes)
    if not scrubber.report_only:
        record.body = new_body
        if record.attributes is not None or attrs:
            record.attributes = attrs
    marks = _report_attributes(s.report)
    if marks:
        record.attributes = {**dict(record.attributes or {}), **marks}
    return s.report


class ScrubbingLogRecordProcessor:
    """Wraps an OTel ``LogRecordProcessor``: records are scrubbed in place, then forwarded.

    A record that cannot be scrubbed is dropped (and reported on the
    ``flowtrace.scrubbing`` logger), never forwarded as is.

    Example::

        from opentelemetry.sdk._logs.export import (
            ConsoleLogRecordExporter,
            SimpleLogRecordProcessor,
        )

        from flowtrace.otel import ScrubbingLogRecordProcessor

        exporter = ConsoleLogRecordExporter()
        processor = ScrubbingLogRecordProcessor(SimpleLogRecordProcessor(exporter))
    """

    def __init__(self, inner: Any, scrubber: Scrubber | None = None) -> None:
        self.inner = inner
        self.scrubber = scrubber

    def on_emit(self, log_record: Any) -> None:
        """Scrub ``log_record.log_record`` and forward."""
        try:
            _scrub_log_record(log_record.log_record, _resolve(self.scrubber))
        except Exception:
            _log.exception("flowtrace could not scrub a log record; it was dropped")
            return
        self.inner.on_emit(log_record)

    def shutdown(self) -> None:
        """Shut the wrapped processor down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped processor."""
        return bool(self.inner.force_flush(timeout_millis))


class ScrubbingLogExporter:
    """Wraps an OTel ``LogRecordExporter``; records are scrubbed before export.

    Example::

        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

        from flowtrace.otel import ScrubbingLogExporter

        exporter = ScrubbingLogExporter(ConsoleLogRecordExporter())   # scrubbed before export
    """

    def __init__(self, inner: Any, scrubber: Scrubber | None = None) -> None:
        self.inner = inner
        self.scrubber = scrubber

    def export(self, batch: Sequence[Any]) -> Any:
        """Scrub every record of the batch, then export it; on failure export nothing."""
        try:
            scrubber = _resolve(self.scrubber)
            for data in batch:
                _scrub_log_record(data.log_record, scrubber)
        except Exception:
            _log.exception("flowtrace could not scrub %d log record(s); dropped", len(batch))
            from opentelemetry.sdk._logs.export import LogRecordExportResult

            return LogRecordExportResult.FAILURE
        return self.inner.export(batch)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return bool(self.inner.force_flush(timeout_millis))
