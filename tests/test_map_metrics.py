"""Observed flows as the ``flowtrace.map.flows`` counter, read with the SDK's metric reader."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import map as ftmap
from flowtrace.otel import FlowContextSpanProcessor


def _points(reader: InMemoryMetricReader) -> dict[tuple[Any, ...], int]:
    data = reader.get_metrics_data()
    out: dict[tuple[Any, ...], int] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                assert metric.name == ftmap.FLOWS_METRIC
                for point in metric.data.data_points:
                    out[tuple(sorted(point.attributes.items()))] = point.value
    return out


def test_flows_are_counted_per_category_with_bounded_attributes() -> None:
    """Each boundary span adds 1 per category; no tenant or id ever becomes an attribute."""
    reader = InMemoryMetricReader()
    provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(
        ftmap.FlowMetricsSpanProcessor(meter_provider=MeterProvider(metric_readers=[reader]))
    )
    tracer = provider.get_tracer("t")
    queue = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders"}
    for tenant in ("acme", "globex"):
        with ft.context(tenant=tenant, purpose="checkout", region="eu"):
            with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER, attributes=queue):
                ftmap.record_data(categories=["pii", "pci"], encrypted=["pci"])
            with tracer.start_as_current_span("internal"):
                pass
    with tracer.start_as_current_span(
        "GET",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": "GET", "server.address": "psp.example"},
    ):
        pass

    common = {
        "source": "api",
        "destination": "rabbitmq/orders",
        "region": "eu",
        "purpose": "checkout",
    }
    assert _points(reader) == {
        tuple(sorted({**common, "category": "pii", "encrypted": False}.items())): 2,
        tuple(sorted({**common, "category": "pci", "encrypted": True}.items())): 2,
        tuple(
            sorted(
                {
                    "source": "api",
                    "destination": "psp.example",
                    "region": "none",
                    "purpose": "none",
                    "category": "none",
                    "encrypted": False,
                }.items()
            )
        ): 1,
    }


def test_a_failing_meter_never_breaks_the_span() -> None:
    """A processor must not raise: a broken counter is logged, the span ends normally."""

    class Broken:
        def add(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("boom")

    processor = ftmap.FlowMetricsSpanProcessor(meter_provider=MeterProvider())
    processor._counter = Broken()  # type: ignore[assignment]
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span(
        "q", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka"}
    ):
        pass
