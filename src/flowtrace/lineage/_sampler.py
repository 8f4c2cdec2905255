"""Head sampling that never drops a lineage edge.

Wrap the sampler you already use: ``TracerProvider(sampler=LineageSampler(
TraceIdRatioBased(0.1)))``. Spans that start with the ``flowtrace.lineage.step``
attribute (every edge span) are always recorded and sampled; every other span gets the
wrapped sampler's decision. Edge spans never become the current span, so sampling them
does not drag the step body's spans into the sample.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from ._edge import ATTR

__all__ = ["LineageSampler"]


class LineageSampler(Sampler):
    """Samples every lineage edge span; delegates every other decision to ``delegate``.

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

        import flowtrace as ft
        from flowtrace.lineage import LineageSampler

        # keep 10% of ordinary traces, but every lineage edge
        provider = TracerProvider(sampler=LineageSampler(TraceIdRatioBased(0.1)))
        ft.configure(tracer_provider=provider)
    """

    def __init__(self, delegate: Sampler | None = None) -> None:
        self._delegate = delegate if delegate is not None else ParentBased(ALWAYS_ON)

    @property
    def delegate(self) -> Sampler:
        """The sampler that decides for non-lineage spans."""
        return self._delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """RECORD_AND_SAMPLE for edge spans, else the delegate's decision."""
        if attributes is not None and ATTR.STEP in attributes:
            parent = trace.get_current_span(parent_context).get_span_context()
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE,
                attributes,
                parent.trace_state if parent.is_valid else trace_state,
            )
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        """``LineageSampler{<delegate description>}``."""
        return f"LineageSampler{{{self._delegate.get_description()}}}"
