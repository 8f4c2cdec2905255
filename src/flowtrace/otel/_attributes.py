"""Span attribute names for the flow context, and flow events as span events.

Only needs the OpenTelemetry *API*; ``flowtrace/__init__`` subscribes the
span-event observer (wiring from the top: importing this module registers
nothing). Public names are re-exported by :mod:`flowtrace.otel`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from opentelemetry import trace

from ..flowcontext import FlowContext, FlowEvent, current, scalar_values

__all__ = [
    "ATTRIBUTES",
    "EVENT_PREFIX",
    "SERVICE_REGION",
    "flow_attributes",
    "span_event_observer",
]

_log = logging.getLogger("flowtrace.otel")

ATTRIBUTES: Final[Mapping[str, str]] = {
    "tenant": "flowtrace.tenant",
    "user": "enduser.id",
    "subject": "flowtrace.subject",
    "purpose": "flowtrace.purpose",
    "legal_basis": "flowtrace.legal_basis",
    "region": "flowtrace.region",
    "correlation_id": "flowtrace.correlation_id",
}
"""Flow-context field -> span attribute name (``enduser.id`` is the OTel convention)."""

SERVICE_REGION: Final = "flowtrace.service.region"
"""Span and resource attribute: the region this process runs in (``configure(region=)``)."""

EVENT_PREFIX: Final = "flowtrace."
"""Span events for flow events are named ``flowtrace.<kind>`` (e.g. ``flowtrace.cross_tenant``)."""

# In the order of flowtrace.flowcontext.FIELDS (the order scalar_values gives).
_NAMES: Final = tuple(ATTRIBUTES.values())


@lru_cache(maxsize=4096)
def _attributes_of(ctx: FlowContext) -> Mapping[str, str]:
    values = scalar_values(ctx)
    return {name: value for name, value in zip(_NAMES, values, strict=True) if value is not None}


def flow_attributes(ctx: FlowContext | None = None) -> Mapping[str, str]:
    """The span attributes describing ``ctx`` (default: the current flow context).

    Only set fields appear. The mapping is shared and cached: do not mutate it.
    """
    return _attributes_of(current() if ctx is None else ctx)


def span_event_observer(event: FlowEvent) -> None:
    """Record ``event`` as a ``flowtrace.<kind>`` event on the current span (if recording).

    The event carries the event's own attributes plus the flow-context attributes of the
    context it happened in. Never raises.
    """
    try:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes: dict[str, Any] = dict(_attributes_of(event.context))
        for key, value in event.attributes.items():
            if value is not None:
                attributes[key] = value
        span.add_event(
            EVENT_PREFIX + event.kind, attributes, timestamp=int(event.timestamp * 1e9)
        )
    except Exception:  # informational: must never stop the flow
        _log.exception("flowtrace could not record a %s span event", event.kind)


def _span_recording() -> bool:
    return trace.get_current_span().is_recording()


# Lets hot paths skip building events nobody would record (see flowcontext.listening).
span_event_observer.active = _span_recording  # type: ignore[attr-defined]


