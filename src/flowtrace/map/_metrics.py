"""Observed flows as an OpenTelemetry metric, for maps wider than one process.

:class:`FlowMetricsSpanProcessor` counts, for every finished span that crosses a
boundary, one ``flowtrace.map.flows`` increment per data category it carried (or one with
``category="none"``). The attributes are bounded by the system's shape, never by its
traffic: no tenant, user, trace or record ids. A fleet-wide map is then a query over the
metrics pipeline the user already runs (Collector -> Prometheus-compatible backend).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from . import _names as n
from ._observed import boundary_edges, span_categories

__all__ = ["FLOWS_METRIC", "FlowMetricsSpanProcessor"]

FLOWS_METRIC: Final = "flowtrace.map.flows"
"""Counter name; attributes ``source``, ``destination``, ``category``, ``region``,
``purpose``, ``encrypted`` (docs/spec/map.md).

Example::

    from flowtrace import map as ftmap

    # the fleet-wide map: this counter summed by source, destination and category
    # in the metrics backend (see FlowMetricsSpanProcessor)
    assert ftmap.FLOWS_METRIC == "flowtrace.map.flows"
"""

_log = logging.getLogger("flowtrace.map")


class FlowMetricsSpanProcessor(SpanProcessor):
    """Count observed flows on the ``flowtrace.map.flows`` counter.

    Add it to a ``TracerProvider`` (``provider.add_span_processor(...)``). It uses
    ``meter_provider`` or OTel's global one. Like every processor it never raises: a
    failure is logged on the ``flowtrace.map`` logger and the span goes on.

    Example::

        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace import SpanKind

        from flowtrace import map as ftmap

        reader = InMemoryMetricReader()
        tracer_provider = TracerProvider(resource=Resource({"service.name": "shop"}))
        tracer_provider.add_span_processor(
            ftmap.FlowMetricsSpanProcessor(MeterProvider(metric_readers=[reader]))
        )
        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"]}
        with tracer_provider.get_tracer("shop").start_as_current_span(
            "orders publish", kind=SpanKind.PRODUCER, attributes=attrs
        ):
            pass
        metric = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0]
        point = metric.data.data_points[0]
        assert metric.name == ftmap.FLOWS_METRIC and point.value == 1
        assert point.attributes["destination"] == "rabbitmq/orders"
    """

    def __init__(self, meter_provider: Any = None) -> None:
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("flowtrace.map")
        self._counter = meter.create_counter(
            FLOWS_METRIC, unit="{flow}", description="data flows observed between systems"
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        try:
            attrs = span.attributes or {}
            resource = span.resource.attributes
            service = str(resource.get(n.SERVICE_NAME) or "unknown_service")
            edges = boundary_edges(service, span.kind.name, attrs)
            if not edges:
                return
            categories, encrypted = span_categories(attrs)
            base = {
                "region": str(attrs.get(n.REGION) or "none"),
                "purpose": str(attrs.get(n.PURPOSE) or "none"),
            }
            for source, destination, _ in edges:
                for category in categories or ("none",):
                    self._counter.add(
                        1,
                        {
                            **base,
                            "source": source,
                            "destination": destination,
                            "category": category,
                            "encrypted": category in encrypted,
                        },
                    )
        except Exception:  # a processor must never break the span pipeline
            _log.exception("flowtrace.map: counting a flow failed")

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
