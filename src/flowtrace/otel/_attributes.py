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

from opentelemetry import context as otel_context
from opentelemetry import trace

from .. import _settings
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

# In the order of flowtrace.flowcontext.FIELDS (the order scalar_values gives).
_NAMES: Final = tuple(ATTRIBUTES.values())


@lru_cache(maxsize=4096)
def _plain_attributes_of(ctx: FlowContext) -> Mapping[str, str]:
    values = scalar_values(ctx)
    return {name: value for name, value in zip(_NAMES, values, strict=True) if value is not None}


def _attributes_of(ctx: FlowContext) -> Mapping[str, str]:
    if ctx.subject is None:  # no data subject: nothing to pseudonymise
        return _plain_attributes_of(ctx)
    return _subject_attributes_of(ctx, _pseudonymizer())


_SUBJECT: Final = ATTRIBUTES["subject"]


@lru_cache(maxsize=4096)
def _subject_attributes_of(ctx: FlowContext, pseudonymizer: Any) -> Mapping[str, str]:
    attributes = dict(_plain_attributes_of(ctx))
    pseudonym = _pseudonym_of(pseudonymizer, ctx.subject, ctx.tenant)
    if pseudonym is None:
        del attributes[_SUBJECT]
    else:
        attributes[_SUBJECT] = pseudonym
    return attributes


def _pseudonymizer() -> Any:
    """The lineage pseudonymizer (``LineageConfig(pseudonym_key=...)``), or ``None``."""
    return getattr(_settings.settings().lineage, "pseudonymizer", None)


def _pseudonym_of(pseudonymizer: Any, subject: object, tenant: str | None) -> str | None:
    """The keyed per-tenant pseudonym of ``subject``; ``None`` (leave it out) when there is
    no key or no tenant: a raw data-subject identifier never leaves on telemetry."""
    if pseudonymizer is None or not tenant or type(subject) is not str or not subject:
        return None
    try:
        return str(pseudonymizer.pseudonym(subject, tenant))
    except Exception:  # e.g. a per-tenant key source that failed: leave it out
        _log.warning("flowtrace left flowtrace.subject out: no pseudonym for this tenant")
        return None


def flow_attributes(ctx: FlowContext | None = None) -> Mapping[str, str]:
    """The span attributes describing ``ctx`` (default: the current flow context).

    Only set fields appear. The data subject appears only as its keyed pseudonym
    (``sp1:...``, when ``configure(lineage=LineageConfig(pseudonym_key=...))`` set a key and
    there is a tenant), never raw. The mapping is shared and cached: do not mutate it.

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
    context it happened in; a ``subject`` attribute is replaced by its keyed pseudonym, or
    left out (as in :func:`flow_attributes`). Never raises.

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
        if "subject" in attributes:
            _pseudonymise_subject(attributes, event)
        span.add_event(
            EVENT_PREFIX + event.kind, attributes, timestamp=int(event.timestamp * 1e9)
        )
    except Exception:  # informational: must never stop the flow
        _log.exception("flowtrace could not record a %s span event", event.kind)


def _pseudonymise_subject(attributes: dict[str, Any], event: FlowEvent) -> None:
    tenant = attributes.get("tenant")
    pseudonym = _pseudonym_of(
        _pseudonymizer(),
        attributes["subject"],
        tenant if isinstance(tenant, str) else event.context.tenant,
    )
    if pseudonym is None:
        del attributes["subject"]
    else:
        attributes["subject"] = pseudonym


_get_context = otel_context.get_current
_NonRecordingSpan = trace.NonRecordingSpan
# The last OTel context seen whose current span is a NonRecordingSpan (none at all is
# INVALID_SPAN, one too). Contexts are immutable and such a span never records, so while
# that same context object is current the answer stays False: one identity test instead
# of the span lookup and its call. Any other span (even an ended one) is asked each time.
_idle_context: object = None


def _span_recording() -> bool:
    global _idle_context
    ctx = _get_context()
    if ctx is _idle_context:
        return False
    span = trace.get_current_span(ctx)
    if type(span) is _NonRecordingSpan:
        _idle_context = ctx
        return False
    return span.is_recording()


# Lets hot paths skip building events nobody would record (see flowcontext.listening).
span_event_observer.active = _span_recording  # type: ignore[attr-defined]


