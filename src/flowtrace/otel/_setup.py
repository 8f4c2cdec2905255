"""Build the SDK TracerProvider that ``flowtrace.configure(...)`` wires.

The export pipeline for every exporter is::

    span -> FlowContextSpanProcessor (stamps the flow context, on start)
         -> BatchSpanProcessor(_wrap_exporter(exporter))  -> backend

:func:`_wrap_exporter` is the single place where every exporter flowtrace configures is
wrapped before spans leave the process (the scrubbing exporter goes there).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from ..errors import ConfigError
from ._attributes import SERVICE_REGION
from ._processors import FlowContextSpanProcessor, JsonLinesSpanExporter
from ._scrub import ScrubbingSpanExporter

__all__ = ["build_tracer_provider"]


def _wrap_exporter(exporter: SpanExporter) -> SpanExporter:
    """Wrap an exporter before spans reach it: every configured exporter only ever sees
    spans scrubbed by ``configure(scrubber=...)`` (or the built-in default scrubber)."""
    return ScrubbingSpanExporter(exporter)


def build_tracer_provider(
    *,
    service: str,
    region: str | None,
    span_exporters: Iterable[Any],
    console_spans: bool,
    spans_file: str | Path | None,
) -> TracerProvider:
    """A TracerProvider with a ``service.name`` resource, the stamping processor and exporters."""
    exporters: list[SpanExporter] = []
    for exporter in span_exporters:
        if not isinstance(exporter, SpanExporter):
            raise ConfigError(
                "configure(span_exporters=...) takes OpenTelemetry SpanExporter instances, "
                f"got {type(exporter).__name__}"
            )
        exporters.append(exporter)
    if console_spans:
        exporters.append(ConsoleSpanExporter())
    if spans_file is not None:
        exporters.append(JsonLinesSpanExporter(spans_file))
    attributes: dict[str, str] = {"service.name": service}
    if region is not None:
        attributes[SERVICE_REGION] = region
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(FlowContextSpanProcessor())
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(_wrap_exporter(exporter)))
    return provider
