"""Span readers: every source the map is built from, as a stream of :data:`SpanTuple`.

* flowtrace JSON-lines span files (``configure(spans_file=...)``),
* OTLP JSON files as the Collector's ``file`` exporter writes them (one
  ``ExportTraceServiceRequest`` / ``TracesData`` JSON object a line, or one document),
* OTLP protobuf files as the Collector's ``file`` exporter writes them with
  ``format: proto`` (each message preceded by its length, 4 bytes big-endian),
* lineage edges (buffer directory or edge file) and audit logs,
* in-process spans (``flowtrace.testing`` capture, ``InMemorySpanExporter``).

Files are read a line (or a message) at a time: memory does not grow with the file.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import MapSourceError
from . import _names as n
from ._observed import SpanTuple

__all__ = [
    "read_audit",
    "read_lineage",
    "read_source",
    "spans_from_otlp_json",
    "spans_from_otlp_proto",
    "spans_from_sdk",
]

# OTLP span kinds (enum numbers and their JSON names) -> SDK kind names.
_KINDS = {
    0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER",
    "SPAN_KIND_UNSPECIFIED": "INTERNAL", "SPAN_KIND_INTERNAL": "INTERNAL",
    "SPAN_KIND_SERVER": "SERVER", "SPAN_KIND_CLIENT": "CLIENT",
    "SPAN_KIND_PRODUCER": "PRODUCER", "SPAN_KIND_CONSUMER": "CONSUMER",
}  # fmt: skip


def _json_value(value: Mapping[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_json_value(v) for v in value["arrayValue"].get("values", ())]
    return None


def _json_attrs(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value", {})) for kv in items}


def spans_from_otlp_json(data: Mapping[str, Any]) -> Iterator[SpanTuple]:
    """Spans of one OTLP/JSON ``ExportTraceServiceRequest`` (or ``TracesData``) object.

    A document of the wrong shape raises :class:`~flowtrace.errors.MapSourceError`.

    Example::

        from flowtrace import map as ftmap

        request = {"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeSpans": [{"spans": [{
                "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7",
                "kind": "SPAN_KIND_CLIENT", "endTimeUnixNano": "1700000000000000000",
                "attributes": [
                    {"key": "db.system", "value": {"stringValue": "postgresql"}},
                    {"key": "db.namespace", "value": {"stringValue": "shop"}}],
            }]}],
        }]}
        observed = ftmap.ObservedMap().add_all(ftmap.spans_from_otlp_json(request))
        assert observed.flow("shop", "postgresql/shop").count == 1
    """
    if not isinstance(data, Mapping) or "resourceSpans" not in data:
        raise MapSourceError("not OTLP JSON: expected an object with 'resourceSpans'")
    try:
        yield from _otlp_json(data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise MapSourceError(f"malformed OTLP JSON ({type(exc).__name__}: {exc})") from None


def _otlp_json(data: Mapping[str, Any]) -> Iterator[SpanTuple]:
    for rs in data["resourceSpans"]:
        resource = _json_attrs(rs.get("resource", {}).get("attributes", ()))
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                yield (
                    str(span.get("traceId", "")).lower(),
                    str(span.get("spanId", "")).lower(),
                    _KINDS.get(span.get("kind", 0), "INTERNAL"),
                    _json_attrs(span.get("attributes", ())),
                    resource,
                    int(span.get("endTimeUnixNano", 0)),
                )


def _proto_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_proto_value(v) for v in value.array_value.values]
    return None if kind is None else getattr(value, kind)


def spans_from_otlp_proto(request: bytes | Any) -> Iterator[SpanTuple]:
    """Spans of an ``ExportTraceServiceRequest`` (protobuf bytes or the decoded message).

    Bytes need the ``otlp`` extra (``opentelemetry-proto``).

    Example::

        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        import flowtrace as ft
        from flowtrace import map as ftmap
        from flowtrace.testing import Capture

        with Capture() as capture:
            with ft.otel.get_tracer().start_as_current_span("work"):
                pass
        body = encode_spans(capture.spans()).SerializeToString()   # what OTLP/HTTP sends
        (span,) = ftmap.spans_from_otlp_proto(body)
        assert span[2] == "INTERNAL" and len(span[0]) == 32
    """
    if isinstance(request, bytes | bytearray):
        from ..errors import require_extra

        module: Any = require_extra(
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
            "otlp",
            "reading OTLP protobuf",
        )
        message = module.ExportTraceServiceRequest()
        try:
            message.ParseFromString(bytes(request))
        except Exception as exc:
            raise MapSourceError(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
        request = message
    for rs in request.resource_spans:
        resource = {kv.key: _proto_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield (
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    _KINDS.get(span.kind, "INTERNAL"),
                    {kv.key: _proto_value(kv.value) for kv in span.attributes},
                    resource,
                    span.end_time_unix_nano,
                )


def spans_from_sdk(spans: Iterable[Any]) -> Iterator[SpanTuple]:
    """SDK ``ReadableSpan`` objects (``flowtrace.testing`` capture, in-memory exporters).

    Example::

        import flowtrace as ft
        from flowtrace import map as ftmap
        from flowtrace.testing import Capture

        with Capture() as capture, ft.context(tenant="acme"):
            ft.handler("GET /orders")(lambda: None)()
        (span,) = ftmap.spans_from_sdk(capture.spans())
        trace_id, span_id, kind, attributes, resource, end_ns = span
        assert kind == "SERVER" and attributes["flowtrace.tenant"] == "acme"
    """
    for span in spans:
        ctx = span.context
        resource = getattr(span, "resource", None)
        yield (
            format(ctx.trace_id, "032x") if ctx else "",
            format(ctx.span_id, "016x") if ctx else "",
            span.kind.name,
            dict(span.attributes or {}),
            dict(resource.attributes) if resource is not None else {},
            span.end_time or 0,
        )


def _span_line(data: Mapping[str, Any]) -> SpanTuple:
    span = (
        data.get("trace_id") or "",
        data.get("span_id") or "",
        data.get("kind") or "INTERNAL",
        data.get("attributes") or {},
        data.get("resource") or {},
        data.get("end_time_unix_nano") or 0,
    )
    if not (
        type(span[0]) is str
        and type(span[1]) is str
        and type(span[2]) is str
        and type(span[3]) is dict
        and type(span[4]) is dict
        and type(span[5]) is int
    ):
        raise MapSourceError(
            "span line has a field of the wrong type (ids and kind are strings, attributes "
            "and resource objects, end_time_unix_nano an integer)"
        )
    return span


_PROTO_MAGIC_LIMIT = 64 << 20  # a length prefix above 64 MiB means this is not proto


def _looks_like_proto(head: bytes) -> bool:
    if len(head) < 5 or head[:1] in (b"{", b"[", b" ", b"\n"):
        return False
    (size,) = struct.unpack(">I", head[:4])
    # a length-prefixed ExportTraceServiceRequest starts with field 1, wire type 2 (0x0a)
    return 0 < size < _PROTO_MAGIC_LIMIT and head[4] == 0x0A


def _read_proto(path: Path) -> Iterator[SpanTuple]:
    with path.open("rb") as fh:
        index = 0
        while True:
            head = fh.read(4)
            if not head:
                return
            index += 1
            if len(head) < 4:
                raise MapSourceError(f"{path}: message {index} is truncated (length prefix)")
            (size,) = struct.unpack(">I", head)
            body = fh.read(size)
            if len(body) < size:
                raise MapSourceError(f"{path}: message {index} is truncated")
            yield from spans_from_otlp_proto(body)


def read_source(path: str | os.PathLike[str]) -> Iterator[SpanTuple]:
    """Spans from a file: flowtrace span lines, OTLP JSON lines / document, or OTLP proto.

    A directory is read as a lineage buffer. Raises :class:`~flowtrace.errors.MapSourceError`
    naming the file and line when a line is not one of these formats.

    Example::

        import json

        from flowtrace import map as ftmap

        line = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
                "kind": "PRODUCER", "resource": {"service.name": "shop"},
                "attributes": {"messaging.system": "rabbitmq",
                               "messaging.destination.name": "orders"},
                "end_time_unix_nano": 1700000000000000000}
        with open("spans.jsonl", "w") as out:        # as configure(spans_file=...) writes
            print(json.dumps(line), file=out)
        (span,) = ftmap.read_source("spans.jsonl")
        assert span[2] == "PRODUCER" and span[4] == {"service.name": "shop"}
    """
    p = Path(path)
    if not p.exists():
        raise MapSourceError(
            f"map source {p} does not exist; pass a span file, an OTLP "
            "file, a lineage buffer directory or an audit log"
        )
    if p.is_dir():
        yield from read_lineage(p)
        return
    with p.open("rb") as fh:
        head = fh.read(8)
    if _looks_like_proto(head):
        yield from _read_proto(p)
        return
    with p.open("r", encoding="utf-8") as fh:
        first = fh.readline()
        if first.strip() == "{" or (
            first.strip().startswith("{") and not first.rstrip().endswith("}")
        ):
            fh.seek(0)  # one pretty-printed document
            yield from _document(p, fh.read())
            return
        fh.seek(0)
        loads = json.loads
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = loads(line)
            except ValueError:
                raise MapSourceError(f"{p}:{number}: not a JSON line") from None
            if not isinstance(data, dict):
                raise MapSourceError(f"{p}:{number}: expected a JSON object")
            if "resourceSpans" in data:
                try:
                    yield from spans_from_otlp_json(data)
                except MapSourceError as exc:
                    raise MapSourceError(f"{p}:{number}: {exc}") from None
            elif "span_id" in data:
                try:
                    span = _span_line(data)
                except MapSourceError as exc:
                    raise MapSourceError(f"{p}:{number}: {exc}") from None
                yield span
            elif "record" in data and "hash" in data:
                record = data["record"]
                yield from _audit_spans([{**record.get("event", {}), "seq": record.get("seq")}])
            elif "checkpoint" in data:
                continue  # the audit log's signed checkpoints carry no flow
            elif "v" in data and "step" in data and "id" in data:
                from ..lineage import read_edges

                del data
                yield from _edge_spans(read_edges(p))
                return
            else:
                raise MapSourceError(
                    f"{p}:{number}: not a flowtrace span line, OTLP JSON, audit record or "
                    "lineage edge"
                )


def _document(p: Path, text: str) -> Iterator[SpanTuple]:
    try:
        data = json.loads(text)
    except ValueError:
        raise MapSourceError(f"{p}: not JSON") from None
    yield from spans_from_otlp_json(data)


def read_lineage(path: str | os.PathLike[str]) -> Iterator[SpanTuple]:
    """Lineage edges (buffer directory or edge file) as edge spans.

    Example::

        import flowtrace as ft
        from flowtrace import map as ftmap
        from flowtrace.testing import Capture

        with Capture() as capture, ft.context(tenant="acme"):
            ft.lineage.record("copy", inputs="s3://raw/a.csv", outputs="s3://clean/a.csv")
        with open("edges.jsonl", "w") as out:        # one edge (LineageEdge.to_json) a line
            for edge in ft.lineage.read_edges(capture.spans()):
                print(edge.to_json(), file=out)
        observed = ftmap.ObservedMap().add_all(ftmap.read_lineage("edges.jsonl"))
        assert observed.nodes["s3://raw/a.csv"].kind == "dataset"
    """
    from ..lineage import read_edges

    yield from _edge_spans(read_edges(path))


def _edge_spans(edges: Iterable[Any]) -> Iterator[SpanTuple]:
    for edge in edges:
        trace_id, _, span_id = edge.id.partition("-")
        attrs: dict[str, Any] = {
            n.LINEAGE_STEP: edge.name,
            n.LINEAGE_INPUTS: list(edge.inputs),
            n.LINEAGE_OUTPUTS: list(edge.outputs),
        }
        if edge.tenant:
            attrs[n.TENANT] = edge.tenant
        yield (
            trace_id,
            span_id,
            "INTERNAL",
            attrs,
            {n.SERVICE_NAME: edge.service or ""},
            edge.end_ns,
        )


def read_audit(source: Any) -> Iterator[SpanTuple]:
    """Audit events as flows: the resource's collection -> the service that touched it.

    ``audit.query`` reads any audit source (a JSON-lines file or a sink).

    Example::

        import flowtrace as ft
        from flowtrace import audit
        from flowtrace import map as ftmap

        log = audit.AuditLog("audit.jsonl")
        with ft.context(tenant="st-mary", purpose="treatment"):
            log.append("patient.read", resource="patients/42")
        log.close()
        observed = ftmap.ObservedMap().add_all(ftmap.read_audit("audit.jsonl"))
        assert any(flow.source == "patients" for flow in observed.flows.values())
    """
    from ..audit import query

    yield from _audit_spans({**event.to_dict(), "seq": event.sequence} for event in query(source))


def _audit_spans(records: Iterable[Mapping[str, Any]]) -> Iterator[SpanTuple]:
    for record in records:
        attrs: dict[str, Any] = {}
        for key, name in (("tenant", n.TENANT), ("purpose", n.PURPOSE), ("region", n.REGION)):
            if record.get(key):
                attrs[name] = record[key]
        if record.get("data_categories"):
            attrs[n.DATA_CATEGORIES] = list(record["data_categories"])
        resource = record.get("resource")
        if resource:
            # resource "patients/42" -> dataset "patients": read by the service
            attrs[n.LINEAGE_STEP] = record.get("action", "")
            attrs[n.LINEAGE_INPUTS] = [str(resource).split("/", 1)[0]]
        yield (
            record.get("trace_id") or "",
            f"audit:{record.get('seq')}",
            "INTERNAL",
            attrs,
            {n.SERVICE_NAME: record.get("service") or "unknown_service"},
            0,
        )
