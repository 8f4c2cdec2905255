"""The data-flow map: what the running system actually did, checked against what was declared.

::

    from flowtrace import map as ftmap

    observed = ftmap.build(["spans.jsonl", "otlp.json"])        # streaming, linear
    declared = ftmap.load_declared("map.toml")                  # or .yaml
    report = ftmap.check(observed, declared)                    # findings with evidence ids
    html = ftmap.render(observed, "html", findings=report.findings)

Observed flows come from spans (OTel semantic conventions plus flowtrace's attributes),
lineage edges and audit records. :class:`FlowMetricsSpanProcessor` emits them as an OTel
metric for fleet-wide maps. :func:`guard_destination` refuses, before anything is sent,
data whose region forbids the destination. See docs/map.md and docs/spec/map.md.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ._check import (
    RULES,
    CheckReport,
    Finding,
    assert_matches,
    check,
    load_baseline,
    write_baseline,
)
from ._declared import DeclaredFlow, DeclaredMap, DeclaredNode, load_declared, parse_declared
from ._metrics import FLOWS_METRIC, FlowMetricsSpanProcessor
from ._names import DATA_CATEGORIES, DATA_ENCRYPTED, DESTINATION_REGION
from ._observed import Flow, Node, ObservedMap, SpanTuple
from ._payload import classify_payload, record_data
from ._pika import publish
from ._render_html import render_html
from ._render_svg import render_svg
from ._render_text import RESTRICTED, render_dot, render_json, render_mermaid
from ._residency import (
    RESIDENCY_ACTION,
    ResidencyPolicy,
    configure_residency,
    guard_destination,
    residency_policy,
)
from ._sources import (
    read_audit,
    read_lineage,
    read_source,
    spans_from_otlp_json,
    spans_from_otlp_proto,
    spans_from_sdk,
)
from ._summary import RegionAnswer, region_answer
from ._trace import TraceStep, trace_steps

__all__ = [
    "CheckReport",
    "DATA_CATEGORIES",
    "DATA_ENCRYPTED",
    "DESTINATION_REGION",
    "DeclaredFlow",
    "DeclaredMap",
    "DeclaredNode",
    "FLOWS_METRIC",
    "FORMATS",
    "Finding",
    "Flow",
    "FlowMetricsSpanProcessor",
    "Node",
    "ObservedMap",
    "RESIDENCY_ACTION",
    "RESTRICTED",
    "RULES",
    "RegionAnswer",
    "ResidencyPolicy",
    "SpanTuple",
    "TraceStep",
    "assert_matches",
    "build",
    "check",
    "classify_payload",
    "configure_residency",
    "guard_destination",
    "load_baseline",
    "load_declared",
    "parse_declared",
    "publish",
    "read_audit",
    "read_lineage",
    "read_source",
    "record_data",
    "region_answer",
    "render",
    "render_dot",
    "render_html",
    "render_json",
    "render_mermaid",
    "render_svg",
    "residency_policy",
    "spans_from_otlp_json",
    "spans_from_otlp_proto",
    "spans_from_sdk",
    "trace_steps",
    "write_baseline",
]


FORMATS = ("mermaid", "dot", "html", "json")
"""The formats :func:`render` accepts.

Example::

    from flowtrace import map as ftmap

    observed = ftmap.ObservedMap()
    outputs = {fmt: ftmap.render(observed, fmt) for fmt in ftmap.FORMATS}
    assert outputs["json"].startswith("{")
"""


def render(
    observed: ObservedMap,
    fmt: str,
    *,
    findings: Sequence[Finding] = (),
    declared: DeclaredMap | None = None,
    steps: Sequence[TraceStep] | None = None,
    trace_id: str | None = None,
) -> str:
    """Render the map (or, with ``steps`` from :func:`trace_steps`, one trace's swimlane)
    as ``mermaid``, ``dot``, ``html`` or ``json``.

    An unknown format raises :class:`~flowtrace.errors.MapError`.

    Example::

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.region": "eu"}
        observed = ftmap.ObservedMap().add_all(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 0)]
        )
        declared = ftmap.parse_declared({"version": 1, "services": [{"name": "shop"}]})
        report = ftmap.check(observed, declared)
        html = ftmap.render(observed, "html", findings=report.findings, declared=declared)
        assert "rabbitmq/orders" in html
        assert "flowchart" in ftmap.render(observed, "mermaid")
    """
    if fmt == "mermaid":
        return render_mermaid(observed, steps)
    if fmt == "dot":
        return render_dot(observed, steps)
    if fmt == "json":
        return render_json(observed, findings, steps)
    if fmt == "html":
        return render_html(observed, findings, declared=declared, steps=steps, trace_id=trace_id)
    from ..errors import MapError

    raise MapError(f"unknown map format {fmt!r}; use one of {', '.join(FORMATS)}")


def build(
    sources: Iterable[str | Path] = (), *, spans: Iterable[Any] = (), samples: int = 3
) -> ObservedMap:
    """Build the observed map from files (span lines, OTLP JSON/proto, lineage buffers or
    edge files, audit logs) and/or SDK spans (e.g. ``capture.spans()``), streaming.

    ``samples`` is how many evidence span ids each flow keeps per facet.

    Example::

        from opentelemetry.trace import SpanKind

        import flowtrace as ft
        from flowtrace import map as ftmap
        from flowtrace.testing import Capture

        with Capture() as capture, ft.context(tenant="acme", purpose="fulfilment"):
            with ft.otel.get_tracer().start_as_current_span(
                "orders publish", kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "rabbitmq",
                            "messaging.destination.name": "orders"},
            ):
                ftmap.record_data(categories=["pii"])
        observed = ftmap.build(spans=capture.spans())   # and/or files: build(["spans.jsonl"])
        (flow,) = observed.flows.values()
        assert flow.destination == "rabbitmq/orders" and flow.categories == {"pii"}
    """
    observed = ObservedMap(samples=samples)
    for source in sources:
        observed.add_all(read_source(source))
    observed.add_all(spans_from_sdk(spans))
    return observed


for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("flowtrace.map._"):
        _obj.__module__ = __name__  # users see flowtrace.map.ObservedMap
del _name, _obj
