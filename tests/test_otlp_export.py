"""Spans leave through the real OTLP/HTTP exporter and arrive with their flow attributes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

import flowtrace as ft


class Receiver(ThreadingHTTPServer):
    """A minimal OTLP/HTTP trace receiver on 127.0.0.1 keeping every decoded request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every span received."""
        out = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    out.extend((resource, span) for span in scope_spans.spans)
        return out


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.paths.append(self.path)
        self.server.requests.append(request)
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_flow_attributes_arrive_through_otlp_http(receiver: Receiver) -> None:
    """A handler's span and a child span reach the receiver with flowtrace attributes."""
    settings = ft.configure(
        service="billing", region="eu", span_exporters=[OTLPSpanExporter(receiver.endpoint)]
    )
    tracer = settings.tracer_provider.get_tracer("app.db")

    @ft.handler("invoices.create", tenant="acme", user="u-1", purpose="billing")
    def create_invoice() -> None:
        with (
            tracer.start_as_current_span("db.insert"),
            ft.cross_tenant(reason="fx rates are shared"),
        ):
            pass

    create_invoice()
    assert settings.tracer_provider.force_flush(10_000)

    assert receiver.paths == ["/v1/traces"] * len(receiver.paths)
    received = {span.name: (resource, span) for resource, span in receiver.spans()}
    assert set(received) == {"invoices.create", "db.insert"}
    for resource, span in received.values():
        attributes = {a.key: _value(a.value) for a in span.attributes}
        assert attributes["flowtrace.tenant"] == "acme"
        assert attributes["enduser.id"] == "u-1"
        assert attributes["flowtrace.purpose"] == "billing"
        assert attributes["flowtrace.service.region"] == "eu"
        assert resource["service.name"] == "billing"
    _, db = received["db.insert"]
    _, handler_span = received["invoices.create"]
    assert db.parent_span_id == handler_span.span_id
    (event,) = db.events
    assert event.name == "flowtrace.cross_tenant"
    assert {a.key: _value(a.value) for a in event.attributes}["reason"] == "fx rates are shared"
