"""Read lineage edges back from what was exported: one reader, :func:`read_edges`.

It takes any of:

* a path: a buffer directory, or a file of JSON-lines edges, OTLP JSON, or flowtrace span
  lines (the kinds may be mixed line by line);
* SDK ``ReadableSpan`` objects (an in-memory capture), as any iterable;
* an OTLP/JSON ``ExportTraceServiceRequest`` (a mapping with ``resourceSpans``; a
  Collector ``file`` exporter writes one per line);
* protobuf ``ExportTraceServiceRequest`` bytes or the decoded message (what an OTLP/HTTP
  receiver gets; needs ``flowtrace[otlp]``);
* one span line of :class:`flowtrace.otel.JsonLinesSpanExporter` (a mapping).

Spans that are not lineage edges are skipped. Duplicates are kept here; the graph drops them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import LineageError, require_extra
from ._buffer import read_buffer
from ._edge import LineageEdge, edge_from_attributes

__all__ = ["read_edges"]


def _from_spans(spans: Iterable[Any]) -> Iterator[LineageEdge]:
    """Edges carried by SDK spans (e.g. ``InMemorySpanExporter().get_finished_spans()``)."""
    from opentelemetry.trace import StatusCode

    for span in spans:
        parent = span.parent
        resource = getattr(span, "resource", None)
        service = resource.attributes.get("service.name") if resource is not None else None
        sc = span.context
        edge = edge_from_attributes(
            span.attributes or {},
            lineage_id=f"{sc.trace_id:032x}-{sc.span_id:016x}" if sc is not None else None,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            span_parent=f"{parent.span_id:016x}" if parent is not None else None,
            service=str(service) if service else None,
            error=span.status.status_code is StatusCode.ERROR,
        )
        if edge is not None:
            yield edge


def _any_value(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    return None


def _attrs(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in items}


def _from_otlp_json(data: Mapping[str, Any]) -> Iterator[LineageEdge]:
    """Edges in one OTLP/JSON ``ExportTraceServiceRequest`` object."""
    if not isinstance(data, Mapping) or "resourceSpans" not in data:
        raise LineageError("not OTLP JSON: expected an object with 'resourceSpans'")
    for rs in data["resourceSpans"]:
        resource = _attrs(rs.get("resource", {}).get("attributes", []))
        service = resource.get("service.name")
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                parent = span.get("parentSpanId") or None
                trace_id, span_id = span.get("traceId", ""), span.get("spanId", "")
                edge = edge_from_attributes(
                    _attrs(span.get("attributes", [])),
                    lineage_id=f"{trace_id.lower()}-{span_id.lower()}" if trace_id else None,
                    start_ns=int(span.get("startTimeUnixNano", 0)),
                    end_ns=int(span.get("endTimeUnixNano", 0)),
                    span_parent=parent,
                    service=service,
                    error=span.get("status", {}).get("code") in (2, "STATUS_CODE_ERROR"),
                )
                if edge is not None:
                    yield edge


def _proto_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_proto_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _from_otlp_proto(request: bytes | Any) -> Iterator[LineageEdge]:
    """Edges in an ``ExportTraceServiceRequest`` (protobuf bytes or the decoded message)."""
    module: Any = require_extra(
        "opentelemetry.proto.collector.trace.v1.trace_service_pb2", "otlp", "reading OTLP protobuf"
    )
    if isinstance(request, bytes | bytearray):
        message = module.ExportTraceServiceRequest()
        try:
            message.ParseFromString(bytes(request))
        except Exception as exc:
            raise LineageError(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
        request = message
    for rs in request.resource_spans:
        resource = {kv.key: _proto_value(kv.value) for kv in rs.resource.attributes}
        service = resource.get("service.name")
        for ss in rs.scope_spans:
            for span in ss.spans:
                edge = edge_from_attributes(
                    {kv.key: _proto_value(kv.value) for kv in span.attributes},
                    lineage_id=f"{span.trace_id.hex()}-{span.span_id.hex()}",
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    span_parent=span.parent_span_id.hex() or None,
                    service=service,
                    error=span.status.code == 2,
                )
                if edge is not None:
                    yield edge


def _from_span_dict(span: Mapping[str, Any]) -> LineageEdge | None:
    """The edge in one span line written by ``flowtrace.otel.JsonLinesSpanExporter``."""
    trace_id, span_id = span.get("trace_id"), span.get("span_id")
    resource = span.get("resource") or {}
    service = resource.get("service.name") if isinstance(resource, Mapping) else None
    return edge_from_attributes(
        span.get("attributes") or {},
        lineage_id=f"{trace_id}-{span_id}" if trace_id and span_id else None,
        start_ns=int(span.get("start_time_unix_nano") or 0),
        end_ns=int(span.get("end_time_unix_nano") or 0),
        span_parent=span.get("parent_span_id") or None,
        service=str(service) if service else None,
        error=span.get("status") == "ERROR",
    )


def _edges_in(data: Any) -> Iterator[LineageEdge]:
    if isinstance(data, Mapping) and "resourceSpans" in data:
        yield from _from_otlp_json(data)
    elif isinstance(data, Mapping) and "v" in data:
        yield LineageEdge.from_dict(data)
    elif isinstance(data, Mapping) and "span_id" in data and "attributes" in data:
        edge = _from_span_dict(data)
        if edge is not None:
            yield edge
    else:
        raise LineageError(
            'not a lineage edge (no "v"), an OTLP JSON request (no "resourceSpans") '
            "or a flowtrace span line"
        )


def _read_path(path: str | os.PathLike[str]) -> Iterator[LineageEdge]:
    """Edges from a buffer directory or a file.

    A file holds one JSON document per line — lineage edges (the buffer format), OTLP JSON
    requests (Collector ``file`` exporter) or flowtrace span lines
    (``configure(spans_file=...)``) — or one (pretty-printed) OTLP JSON document. Raises
    :class:`LineageError` naming the file and line when unreadable.

    Example::

        import flowtrace as ft
        from flowtrace import lineage

        ft.configure(spans_file="spans.jsonl")
        with ft.context(tenant="acme"):
            lineage.record("copy", inputs="a.csv", outputs="b.csv")
        ft.configure(spans_file=None)
        graph = lineage.LineageGraph(lineage.read_edges("spans.jsonl"))   # or a buffer directory
        assert graph.upstream("b.csv") == ["a.csv"]
    """
    p = Path(path)
    if not p.exists():
        raise LineageError(f"lineage source {p} does not exist")
    if p.is_dir():
        yield from read_buffer(p)
        return
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("{") and "\n" in text.strip() and '"resourceSpans"' in text:
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None
        if whole is not None:
            yield from _from_otlp_json(whole)
            return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield from _edges_in(json.loads(line))
        except (ValueError, LineageError) as exc:
            raise LineageError(f"{p}:{number}: {exc}") from None


def read_edges(source: Any) -> Iterator[LineageEdge]:
    """The lineage edges in ``source`` (see the module docstring for what it may be).

    Spans that are not lineage edges are skipped; unreadable input raises
    :class:`~flowtrace.errors.LineageError` (naming the file and line for paths).

    Example::

        import flowtrace as ft
        from flowtrace.testing import Capture

        with Capture() as capture, ft.context(tenant="acme"):
            ft.lineage.record("copy", inputs="s3://raw/a.csv", outputs="s3://clean/a.csv")
        (edge,) = ft.lineage.read_edges(capture.spans())   # non-lineage spans are skipped
        assert (edge.name, edge.tenant) == ("copy", "acme")
    """
    if isinstance(source, str | os.PathLike):
        return _read_path(source)
    if isinstance(source, bytes | bytearray) or hasattr(source, "resource_spans"):
        return _from_otlp_proto(source)
    if isinstance(source, Mapping):
        if "resourceSpans" in source:
            return _from_otlp_json(source)
        return _edges_in(source)
    if isinstance(source, Iterable):
        return _from_spans(source)
    raise LineageError(
        f"cannot read lineage edges from {type(source).__name__}: pass a path, spans, "
        "an OTLP request (JSON mapping or protobuf) or a flowtrace span line"
    )
