"""One trace as a swimlane: which system handed which categories to whom, in order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import _names as n
from ._observed import SpanTuple, boundary_edges, span_categories

__all__ = ["TraceStep", "trace_steps"]


@dataclass(frozen=True)
class TraceStep:
    time_ns: int
    span_id: str
    source: str
    destination: str
    categories: tuple[str, ...]
    plaintext: tuple[str, ...]
    purpose: str | None
    region: str | None


def trace_steps(spans: Iterable[SpanTuple], trace_id: str) -> list[TraceStep]:
    """The boundary-crossing spans of ``trace_id``, oldest first (streams the sources;
    keeps only that trace's steps)."""
    wanted = trace_id.lower()
    steps: list[TraceStep] = []
    for tid, span_id, kind, attrs, resource, end_ns in spans:
        if tid != wanted:
            continue
        service = str(resource.get(n.SERVICE_NAME) or attrs.get(n.SERVICE_NAME) or "unknown")
        categories, encrypted = span_categories(attrs)
        plaintext = tuple(c for c in categories if c not in encrypted)
        for source, destination, _ in boundary_edges(service, kind, attrs):
            steps.append(
                TraceStep(
                    end_ns,
                    span_id,
                    source,
                    destination,
                    categories,
                    plaintext,
                    attrs.get(n.PURPOSE),
                    attrs.get(n.REGION),
                )
            )
    steps.sort(key=lambda s: (s.time_ns, s.span_id))
    return steps
