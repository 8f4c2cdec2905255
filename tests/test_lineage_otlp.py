"""Lineage through the real OTLP/HTTP exporter to a receiver on 127.0.0.1, rebuilt as a graph."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

import flowtrace as ft
from flowtrace import lineage
from flowtrace.lineage import LineageBuffer, LineageGraph, read_edges
from flowtrace.otel import get_tracer


class Receiver:
    """A minimal OTLP/HTTP trace receiver: stores each request body; can refuse with 400."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.refuse = False
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces" or outer.refuse:
                    outer.refused += 1
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.bodies.append(body)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def requests(self) -> list[ExportTraceServiceRequest]:
        out = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            out.append(request)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def pipeline() -> str:
    """charges -> orders -> monthly aggregate; returns the aggregate identifier."""

    @ft.step("normalize", inputs=lambda c: [f"stripe:charge/{c}"], outputs=lambda o: [o])
    def normalize(charge: str) -> str:
        return f"postgres://billing/orders#{charge[3:]}"

    @ft.step("aggregate", inputs=lambda orders: orders, outputs=["warehouse://rev/monthly#2026-01"])
    def aggregate(orders: list[str]) -> int:
        return len(orders)

    with ft.context(tenant="acme"), get_tracer().start_as_current_span("batch"):
        aggregate([normalize(f"ch_{i}") for i in range(20)])
    return "warehouse://rev/monthly#2026-01"


def test_live_spans_through_otlp_http_rebuild_the_graph(receiver: Receiver) -> None:
    """Edge spans exported by OTLPSpanExporter arrive intact and answer upstream queries."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "billing"}),
        sampler=lineage.LineageSampler(TraceIdRatioBased(0.0)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint)))
    ft.configure(tracer_provider=provider)
    target = pipeline()
    assert provider.force_flush(30_000)
    provider.shutdown()

    requests = receiver.requests()
    names = {
        s.name
        for r in requests
        for rs in r.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }
    assert names == {"lineage normalize", "lineage aggregate"}  # 'batch' was sampled out
    graph = LineageGraph(e for body in receiver.bodies for e in read_edges(body))
    assert len(graph) == 21
    assert sorted(graph.sources(target)) == sorted(f"stripe:charge/ch_{i}" for i in range(20))
    (agg,) = graph.producers(target)
    assert agg.tenant == "acme"
    assert agg.service == "billing"
    assert agg.span_parent is not None  # placed under the 'batch' span of the trace


def test_buffer_ships_through_otlp_http_after_the_receiver_recovers(
    receiver: Receiver, tmp_path: Path
) -> None:
    """With the receiver refusing, edges wait in the buffer; after recovery all arrive once."""
    provider = TracerProvider(sampler=TraceIdRatioBased(0.1))
    ft.configure(tracer_provider=provider, service="billing")
    buffer = LineageBuffer(
        tmp_path, exporter=OTLPSpanExporter(endpoint=receiver.endpoint, timeout=10), batch_size=7
    )
    ft.configure(lineage=ft.lineage.LineageConfig(buffer=buffer))
    receiver.refuse = True
    target = pipeline()
    assert buffer.ship() == 0
    assert receiver.refused == 1
    assert buffer.stats().pending == 21
    receiver.refuse = False
    assert buffer.ship() == 21
    buffer.close()

    graph = LineageGraph(e for body in receiver.bodies for e in read_edges(body))
    assert (len(graph), graph.duplicates) == (21, 0)
    assert len(graph.sources(target)) == 20
    first = receiver.requests()[0].resource_spans[0]
    resource = {kv.key: kv.value.string_value for kv in first.resource.attributes}
    assert resource["service.name"] == "billing"
    span = first.scope_spans[0].spans[0]
    edge = graph.edge(f"{span.trace_id.hex()}-{span.span_id.hex()}")
    assert edge.name == span.name.removeprefix("lineage ")
