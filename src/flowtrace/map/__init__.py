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

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._metrics import FLOWS_METRIC, FlowMetricsSpanProcessor
from ._names import DATA_CATEGORIES, DATA_ENCRYPTED, DESTINATION_REGION
from ._observed import Flow, Node, ObservedMap, SpanTuple
from ._payload import classify_payload, record_data
from ._sources import (
    read_audit,
    read_lineage,
    read_source,
    spans_from_otlp_json,
    spans_from_otlp_proto,
    spans_from_sdk,
)

__all__ = [
    "DATA_CATEGORIES",
    "DATA_ENCRYPTED",
    "DESTINATION_REGION",
    "FLOWS_METRIC",
    "Flow",
    "FlowMetricsSpanProcessor",
    "Node",
    "ObservedMap",
    "SpanTuple",
    "build",
    "classify_payload",
    "read_audit",
    "read_lineage",
    "read_source",
    "record_data",
    "spans_from_otlp_json",
    "spans_from_otlp_proto",
    "spans_from_sdk",
]


def build(
    sources: Iterable[str | Path] = (), *, spans: Iterable[Any] = (), samples: int = 3
) -> ObservedMap:
    """Build the observed map from files (span lines, OTLP JSON/proto, lineage buffers or
    edge files, audit logs) and/or SDK spans (e.g. ``capture.spans()``), streaming."""
    observed = ObservedMap(samples=samples)
    for source in sources:
        observed.add_all(read_source(source))
    observed.add_all(spans_from_sdk(spans))
    return observed
