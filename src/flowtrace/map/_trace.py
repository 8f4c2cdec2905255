"""One trace as a swimlane: which system handed which categories to whom, in order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import _names as n
from ._observed import SpanTuple, boundary_edges, span_categories

__all__ = ["TraceStep", "trace_steps"]


@dataclass(frozen=True)
class TraceStep:
    """One hop of a trace: ``source`` handed ``categories`` to ``destination``.

    Example::

        from flowtrace import map as ftmap

        attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
                 "flowtrace.data.categories": ["pii"], "flowtrace.purpose": "fulfilment"}
        (step,) = ftmap.trace_steps(
            [("t1", "s1", "PRODUCER", attrs, {"service.name": "shop"}, 5)], "t1"
        )
        assert (step.source, step.destination, step.plaintext) == (
            "shop", "rabbitmq/orders", ("pii",))
        assert step.purpose == "fulfilment"
    """

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
    keeps only that trace's steps).

    Example::

        from flowtrace import map as ftmap

        resource = {"service.name": "shop"}
        spans = [
            ("t1", "s2", "CLIENT", {"db.system": "postgresql", "db.namespace": "shop"},
             resource, 20),
            ("t1", "s1", "PRODUCER", {"messaging.system": "rabbitmq",
             "messaging.destination.name": "orders"}, resource, 10),
            ("t2", "s3", "CLIENT", {"db.system": "redis"}, resource, 5),
        ]
        steps = ftmap.trace_steps(spans, "t1")
        assert [s.destination for s in steps] == ["rabbitmq/orders", "postgresql/shop"]
    """
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
