"""Span attribute names for the flow context, and flow events as span events.

Only needs the OpenTelemetry *API*; imported by ``flowtrace`` itself so the span-event
observer is registered by default. Public names are re-exported by :mod:`flowtrace.otel`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import get_current as _get_otel_context

from ._observe import FlowEvent, add_observer
from .context import FlowContext, current

_SPAN_KEY: str | None
try:  # the OTel API's own key for the current span (private: fall back if it ever moves)
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - depends on the installed OTel API
    _SPAN_KEY = None

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
"""Flow-context field -> span attribute name (``enduser.id`` is the OTel convention).

Example::

    from flowtrace.otel import ATTRIBUTES

    assert ATTRIBUTES["tenant"] == "flowtrace.tenant"
    assert ATTRIBUTES["user"] == "enduser.id"
"""

SERVICE_REGION: Final = "flowtrace.service.region"
"""Span and resource attribute: the region this process runs in (``configure(region=)``).

Example::

    import flowtrace as ft
    from flowtrace.otel import SERVICE_REGION

    ft.configure(region="eu", console_spans=True)
    assert SERVICE_REGION == "flowtrace.service.region"   # on the resource and every span
"""

EVENT_PREFIX: Final = "flowtrace."
"""Span events for flow events are named ``flowtrace.<kind>`` (e.g. ``flowtrace.cross_tenant``).

Example::

    import flowtrace as ft
    from flowtrace.otel import EVENT_PREFIX

    assert EVENT_PREFIX + ft.EventKind.CROSS_TENANT == "flowtrace.cross_tenant"
"""

# FlowContext stores these fields at indexes 0..6, in this order (see context.FIELDS).
_NAMES: Final = tuple(ATTRIBUTES.values())


@lru_cache(maxsize=4096)
def _attributes_of(ctx: FlowContext) -> Mapping[str, str]:
    return {name: value for name, value in zip(_NAMES, ctx, strict=False) if value is not None}


def flow_attributes(ctx: FlowContext | None = None) -> Mapping[str, str]:
    """The span attributes describing ``ctx`` (default: the current flow context).

    Only set fields appear. The mapping is shared and cached: do not mutate it.

    Example::

        import flowtrace as ft
        from flowtrace.otel import flow_attributes

        with ft.context(tenant="acme", user="u-1"):
            assert flow_attributes() == {"flowtrace.tenant": "acme", "enduser.id": "u-1"}
    """
    return _attributes_of(current() if ctx is None else ctx)


def span_event_observer(event: FlowEvent) -> None:
    """Record ``event`` as a ``flowtrace.<kind>`` event on the current span (if recording).

    The event carries the event's own attributes plus the flow-context attributes of the
    context it happened in. Never raises.

    Example::

        import flowtrace as ft
        from flowtrace.otel import span_event_observer

        ft.add_observer(span_event_observer)   # registered by default; re-adding is harmless
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
    # trace.get_current_span().is_recording() without its two extra call layers: this
    # runs on every decrypt (see _observe.listening).
    if _SPAN_KEY is None:  # pragma: no cover - depends on the installed OTel API
        return trace.get_current_span().is_recording()
    span = _get_otel_context().get(_SPAN_KEY)
    return span is not None and isinstance(span, trace.Span) and span.is_recording()


# Lets hot paths skip building events nobody would record (see _observe.listening).
span_event_observer.active = _span_recording  # type: ignore[attr-defined]
add_observer(span_event_observer)


