"""Turn buffered edges back into OTel spans with their original ids, for any SpanExporter.

The span shipped from the buffer has the trace id and span id encoded in the lineage id,
so a backend that received the live span too sees the same span twice (and flowtrace's
readers drop duplicates by lineage id).
"""

from __future__ import annotations

import hashlib

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .._version import __version__
from ._edge import ATTR, LineageEdge, edge_attributes
from ._ids import parse_lineage_id

__all__ = ["edge_to_span"]

_SCOPE = InstrumentationScope("flowtrace.lineage", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_resources: dict[str | None, Resource] = {}


def _resource(service: str | None) -> Resource:
    resource = _resources.get(service)
    if resource is None:
        resource = Resource.create({"service.name": service or "unknown_service"})
        if len(_resources) < 256:
            _resources[service] = resource
    return resource


def edge_to_span(edge: LineageEdge) -> ReadableSpan:
    """A finished, sampled span equivalent to the live edge span.

    Example::

        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        from flowtrace.lineage import LineageEdge, edge_to_span, new_lineage_id

        edge = LineageEdge(id=new_lineage_id(), name="copy", inputs=("a",), outputs=("b",))
        span = edge_to_span(edge)                        # ship it with any SpanExporter
        assert span.name == "lineage copy"
        ConsoleSpanExporter().export([span])
    """
    attributes = edge_attributes(edge)
    ids = parse_lineage_id(edge.id)
    if ids is None:
        # A foreign id (not a span context): derive stable span ids from it, so re-shipping
        # is idempotent, and carry the id itself as an attribute (readers prefer it).
        digest = hashlib.sha256(edge.id.encode()).digest()
        ids = (int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1)
        attributes[ATTR.ID] = edge.id
    trace_id, span_id = ids
    parent = None
    if edge.span_parent:
        try:
            parent = SpanContext(trace_id, int(edge.span_parent, 16), True, _SAMPLED)
        except ValueError:
            parent = None
    links = []
    for parent_id in edge.parents:
        parent_ids = parse_lineage_id(parent_id)
        if parent_ids is not None:
            links.append(Link(SpanContext(parent_ids[0], parent_ids[1], True, _SAMPLED)))
    status = (
        Status(StatusCode.ERROR, edge.error_type or "error")
        if edge.status == "error"
        else Status(StatusCode.UNSET)
    )
    return ReadableSpan(
        name=f"lineage {edge.name}",
        context=SpanContext(trace_id, span_id, False, _SAMPLED),
        parent=parent,
        resource=_resource(edge.service),
        attributes=attributes,
        links=links,
        kind=SpanKind.INTERNAL,
        status=status,
        start_time=edge.start_ns,
        end_time=edge.end_ns or edge.start_ns,
        instrumentation_scope=_SCOPE,
    )
