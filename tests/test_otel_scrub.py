"""OTel adapters: spans and log records are scrubbed before any exporter sees them."""

from __future__ import annotations

import gzip
import http.server
import threading
import zlib
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import flowtrace
from flowtrace import Scrubber
from flowtrace.otel._scrub import (
    CATEGORIES_ATTRIBUTE,
    COUNT_ATTRIBUTE,
    ScrubbingLogExporter,
    ScrubbingLogRecordProcessor,
    ScrubbingSpanExporter,
    ScrubbingSpanProcessor,
)

CARD = "4111111111111111"


def _emit_leaky_span(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(f"charge {CARD}") as span:
        span.set_attribute("user.email", "a@b.io")
        span.set_attribute("http.request.header.authorization", "Basic dXNlcjpwYXNz")
        span.set_attribute("tokens_used", 512)
        span.set_attribute("ids", [1, 2])
        span.add_event("retry", {"note": "call (415) 555-0132"})
        span.record_exception(ValueError(f"card {CARD} declined"))
        span.set_status(Status(StatusCode.ERROR, "declined for a@b.io"))


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ScrubbingSpanExporter(memory)))
    _emit_leaky_span(provider)
    yield memory
    provider.shutdown()


def test_exporter_wrapper_scrubs_every_part_of_a_span(exported: InMemorySpanExporter) -> None:
    """Name, attributes, events, exception event and status description are scrubbed."""
    (span,) = exported.get_finished_spans()
    assert span.name == "charge [REDACTED:card]"
    attrs = dict(span.attributes or {})
    assert attrs["user.email"] == "[REDACTED:email]"
    assert attrs["http.request.header.authorization"] == "[REDACTED:credential]"
    assert attrs["tokens_used"] == 512
    assert attrs["ids"] == (1, 2)
    retry, exc = span.events
    assert retry.attributes == {"note": "call [REDACTED:phone]"}
    assert exc.name == "exception"
    assert exc.attributes is not None
    assert exc.attributes["exception.message"] == "card [REDACTED:card] declined"
    assert CARD not in str(exc.attributes["exception.stacktrace"])
    assert "\n" in str(exc.attributes["exception.stacktrace"])  # stays readable
    assert span.status.description == "declined for [REDACTED:email]"


def test_span_carries_scrub_counts(exported: InMemorySpanExporter) -> None:
    """flowtrace.scrub.count and .categories tell how much was scrubbed."""
    (span,) = exported.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs[COUNT_ATTRIBUTE] == 7
    assert attrs[CATEGORIES_ATTRIBUTE] == ("credential", "pci", "pii")


def test_processor_wrapper_and_report_only() -> None:
    """The processor wrapper scrubs too; report-only keeps content but adds the counts."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        ScrubbingSpanProcessor(SimpleSpanProcessor(memory), Scrubber(report_only=True))
    )
    _emit_leaky_span(provider)
    (span,) = memory.get_finished_spans()
    assert span.name == f"charge {CARD}"
    assert dict(span.attributes or {})[COUNT_ATTRIBUTE] == 7
    memory.clear()
    flowtrace.configure(scrubber=Scrubber())
    provider2 = TracerProvider()
    provider2.add_span_processor(ScrubbingSpanProcessor(SimpleSpanProcessor(memory)))
    _emit_leaky_span(provider2)
    assert memory.get_finished_spans()[0].name == "charge [REDACTED:card]"


def test_exporter_fails_closed() -> None:
    """If scrubbing fails, the batch is not exported at all."""

    class Broken(Scrubber):
        def scrub_with_report_text(self, text: str, *, field: str = "") -> Any:
            raise RuntimeError("boom")

    memory = InMemorySpanExporter()
    wrapper = ScrubbingSpanExporter(memory, Broken())
    provider = TracerProvider()
    provider.get_tracer("t").start_span("x a@b.io").end()
    span = provider.get_tracer("t").start_span("y")
    span.end()
    assert wrapper.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert memory.get_finished_spans() == ()


# --- real OTLP/HTTP export -------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        type(self).bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_real_otlp_export_carries_no_secret() -> None:
    """Through the real OTLP/HTTP exporter to a loopback receiver: the wire has no secret."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    _Receiver.bodies = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces")
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(ScrubbingSpanExporter(exporter)))
        _emit_leaky_span(provider)
        provider.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    assert _Receiver.bodies
    raw = b"".join(_Receiver.bodies)
    assert CARD.encode() not in raw
    assert b"a@b.io" not in raw
    assert b"dXNlcjpwYXNz" not in raw
    request = ExportTraceServiceRequest()
    request.ParseFromString(_Receiver.bodies[0])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.name == "charge [REDACTED:card]"
    counts = {a.key: a.value.int_value for a in span.attributes if a.key == COUNT_ATTRIBUTE}
    assert counts == {COUNT_ATTRIBUTE: 7}


# --- logs ----------------------------------------------------------------------------------


def _otel_provider(wrap: str) -> tuple[InMemoryLogRecordExporter, LoggerProvider]:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    if wrap == "processor":
        provider.add_log_record_processor(
            ScrubbingLogRecordProcessor(SimpleLogRecordProcessor(memory))
        )
    else:
        provider.add_log_record_processor(SimpleLogRecordProcessor(ScrubbingLogExporter(memory)))
    return memory, provider


@pytest.mark.parametrize("wrap", ["processor", "exporter"])
def test_log_records_are_scrubbed(wrap: str) -> None:
    """OTel log records: body and attributes are scrubbed, counts added."""
    memory, provider = _otel_provider(wrap)
    provider.get_logger("t").emit(
        LogRecord(
            body="refund to a@b.io",
            attributes={"card": CARD, "password": "pw", "n": 3},
            severity_number=SeverityNumber.WARN,
        )
    )
    provider.shutdown()
    (data,) = memory.get_finished_logs()
    record = data.log_record
    assert record.body == "refund to [REDACTED:email]"
    attrs = dict(record.attributes or {})
    assert attrs["card"] == "[REDACTED:card]"
    assert attrs["password"] == "[REDACTED:credential]"
    assert attrs["n"] == 3
    assert attrs[COUNT_ATTRIBUTE] == 3


def test_configured_exporters_only_see_scrubbed_spans() -> None:
    """configure(span_exporters=[...]) wraps every exporter with the scrubbing exporter."""
    memory = InMemorySpanExporter()
    flowtrace.configure(span_exporters=[memory])
    provider = flowtrace.settings().tracer_provider
    try:
        with provider.get_tracer("t").start_as_current_span("pay a@b.io") as span:
            span.set_attribute("card", CARD)
        provider.force_flush()
        (exported,) = memory.get_finished_spans()
        assert exported.name == "pay [REDACTED:email]"
        assert dict(exported.attributes or {})["card"] == "[REDACTED:card]"
    finally:
        provider.shutdown()
