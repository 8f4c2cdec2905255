"""A small system traced with the SDK: the spans the map tests build maps from."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import map as ftmap
from flowtrace.otel import FlowContextSpanProcessor


def _provider(service: str, exporter: Any, region: str = "eu") -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "flowtrace.service.region": region})
    )
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def run_system(exporter: Any) -> None:
    """An API publishing an order (email in plaintext, card encrypted), a worker storing
    it in PostgreSQL and calling a payment processor."""
    api = _provider("orders-api", exporter).get_tracer("t")
    worker = _provider("billing-worker", exporter).get_tracer("t")
    with ft.context(tenant="acme", purpose="checkout", legal_basis="contract", region="eu"):
        with (
            api.start_as_current_span("POST /orders", kind=SpanKind.SERVER),
            api.start_as_current_span(
                "orders publish",
                kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "rabbitmq", "messaging.destination.name": "orders"},
            ),
        ):
            ftmap.record_data(categories=["pii", "pci"], encrypted=["pci"])
        with worker.start_as_current_span(
            "orders process",
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "rabbitmq", "messaging.destination.name": "orders"},
        ):
            ftmap.record_data(categories=["pii", "pci"], encrypted=["pci"])
            with worker.start_as_current_span(
                "INSERT",
                kind=SpanKind.CLIENT,
                attributes={"db.system": "postgresql", "db.namespace": "shop"},
            ):
                ftmap.record_data(categories=["pii"])
            with worker.start_as_current_span(
                "POST",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": "POST",
                    "server.address": "127.0.0.1",
                    "server.port": 9999,
                    "peer.service": "payments-psp",
                },
            ):
                ftmap.record_data(categories=["pci"], encrypted=["pci"])
    with (
        ft.context(tenant="globex", purpose="checkout", region="eu"),
        worker.start_as_current_span(
            "INSERT",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.namespace": "shop"},
        ),
    ):
        pass


def system_spans() -> list[Any]:
    exporter = InMemorySpanExporter()
    run_system(exporter)
    return list(exporter.get_finished_spans())
