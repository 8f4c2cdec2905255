"""Carry the flow context across processes: W3C ``traceparent`` + ``baggage``.

Producer side::

    headers = flowtrace.inject({})          # traceparent/tracestate + baggage

Consumer side::

    ctx = flowtrace.extract(headers)        # a fresh FlowContext, or ContextPropagationError
    parent = remote_span_context(headers)   # the producer's span, for a span link

:func:`extract` always starts from an *empty* context (the ambient one is never merged in)
and is all-or-nothing: malformed or oversized input raises
:class:`~flowtrace.errors.ContextPropagationError`, it never returns a partial context and
never silently drops a tenant. A carrier is untrusted input: nothing here enters the
extracted context for you. Handlers compare it with the tenant their own resolvers trust;
consumers inside your trust boundary enter it starting from an empty context.

:class:`FlowtracePropagator` plugs the same codec into OpenTelemetry, so OTel's own
instrumentations (requests, httpx, pika, kafka, ...) carry the flow context. The baggage
keys, encoding and limits are specified in docs/spec/baggage.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context, create_key, get_current, get_value, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..errors import ContextPropagationError
from ..flowcontext import FlowContext, current
from ._baggage_codec import decode, encode, foreign_members

__all__ = [
    "BAGGAGE_HEADER",
    "FlowtracePropagator",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "extract",
    "flow_context_from_otel",
    "inject",
    "otel_context",
    "remote_span_context",
]

BAGGAGE_HEADER: Final = "baggage"
TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"

M = TypeVar("M", bound=MutableMapping[str, str])

_logger = logging.getLogger("flowtrace.propagation")
_TRACE_CONTEXT: Final = TraceContextTextMapPropagator()
_FLOW_KEY: Final = create_key("flowtrace.flow_context")
# version "-" trace-id "-" parent-id "-" flags, version 00 exactly, later versions may extend.
_TRACEPARENT = re.compile(
    r"(?!ff)([0-9a-f]{2})-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-[^\s]*)?"
)


def _text(name: str, raw: object) -> str:
    """One header value as text: str, ASCII bytes, or a list of them (joined by ',')."""
    if type(raw) is str:
        return raw
    if isinstance(raw, bytes | bytearray):
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ContextPropagationError(
                f"header {name!r} is not ASCII; W3C headers percent-encode their values"
            ) from None
    if isinstance(raw, list | tuple):
        return ",".join(_text(name, item) for item in raw)
    raise ContextPropagationError(
        f"header {name!r} must be str or bytes (or a list of them), got {type(raw).__name__}"
    )


def _header(carrier: Any, name: str, getter: Getter[Any] | None) -> str | None:
    """The value of header ``name`` in ``carrier``, all fields combined; ``None`` if absent.

    Without a getter the carrier must be a mapping (or a multi-value header object with
    ``getlist``/``getall``/``get_all``: werkzeug, starlette, multidict, ``email.message``);
    names match case-insensitively and every field of the header is combined, as HTTP
    combines repeated header fields.
    """
    if getter is not None and getter is not default_getter:
        values = getter.get(carrier, name)
        if values is None:
            return None
        return _text(name, values if isinstance(values, str) else list(values))
    if type(carrier) is not dict:
        return _header_of_object(carrier, name)
    raw = carrier.get(name)
    size = len(name)
    # Other spellings of the header ("Baggage", "BAGGAGE") are combined with it.
    others = [
        key
        for key in carrier
        if type(key) is str and len(key) == size and key != name and key.lower() == name
    ]
    if not others:
        return None if raw is None else _text(name, raw)
    found = [] if raw is None else [_text(name, raw)]
    found.extend(_text(name, carrier[key]) for key in others if carrier[key] is not None)
    return ",".join(found) if found else None


_MULTI_GETTERS: Final = ("getlist", "getall", "get_all")


def _header_of_object(carrier: Any, name: str) -> str | None:
    """Header lookup in a non-dict carrier, which may itself be case-insensitive."""
    many = None
    for attr in _MULTI_GETTERS:
        method = getattr(carrier, attr, None)
        if callable(method):
            many = method
            break
    if many is None and not isinstance(carrier, Mapping):
        raise TypeError(
            f"carrier must be a mapping of header names to values, got "
            f"{type(carrier).__name__}; pass getter= for other carriers"
        )
    # keys(), not iteration: werkzeug's Headers iterates over (name, value) pairs.
    keys = carrier.keys()
    spellings = dict.fromkeys([name, *(k for k in keys if type(k) is str and k.lower() == name)])
    # A case-insensitive carrier answers every spelling with the same fields: count once.
    groups: list[list[Any]] = []
    for spelling in spellings:
        if many is not None:
            try:
                values = many(spelling)
            except KeyError:
                continue
            values = [] if values is None else [v for v in values if v is not None]
        else:
            value = carrier.get(spelling)
            values = [] if value is None else [value]
        if values and values not in groups:
            groups.append(values)
    found = [_text(name, value) for group in groups for value in group]
    return ",".join(found) if found else None


def extract(carrier: Any, *, getter: Getter[Any] | None = None) -> FlowContext:
    """The flow context a carrier names, parsed into a fresh :class:`FlowContext`.

    Never merged with the ambient context. A carrier without a ``baggage`` header (or
    without flowtrace members) gives an empty context. Foreign baggage members are
    ignored but count toward the W3C limits. Malformed or oversized input raises
    :class:`~flowtrace.errors.ContextPropagationError`; a carrier that is not a mapping
    needs an OTel ``getter``.
    """
    header = _header(carrier, BAGGAGE_HEADER, getter)
    if header is None:
        return FlowContext()
    return decode(header)


def inject(
    carrier: M,
    context: FlowContext | None = None,
    *,
    setter: Setter[M] | None = None,
) -> M:
    """Write ``traceparent``/``tracestate`` and ``baggage`` for ``context`` into ``carrier``.

    ``context`` defaults to :func:`flowtrace.current`; the trace headers come from the
    current OTel span (none when no span is recording). Foreign members of an existing
    ``baggage`` header are kept; stale ``flowtrace.`` members are replaced. A context that
    would break a W3C limit raises :class:`~flowtrace.errors.ContextPropagationError`
    (nothing is written then): flowtrace never truncates. Returns ``carrier``.
    """
    flow = current() if context is None else context
    if type(flow) is not FlowContext:
        raise TypeError(f"context must be a FlowContext, got {type(flow).__name__}")
    baggage = _baggage_for(carrier, flow)
    _TRACE_CONTEXT.inject(carrier, setter=default_setter if setter is None else setter)
    _write_baggage(carrier, baggage, setter)
    return carrier


def _baggage_for(carrier: Any, flow: FlowContext) -> str:
    """Our members, merged with the foreign members of a baggage header already there."""
    if carrier:
        try:
            existing = _header(carrier, BAGGAGE_HEADER, None)
        except TypeError:  # a carrier only a custom setter understands: nothing to merge
            existing = None
        if existing:
            return encode(flow, foreign_members(existing))
    return encode(flow)


def _write_baggage(carrier: Any, baggage: str, setter: Setter[Any] | None) -> None:
    mutable = type(carrier) is dict or isinstance(carrier, MutableMapping)
    if mutable and len(carrier) > 1:
        # Drop other spellings ("Baggage") so the carrier holds one merged header.
        size = len(BAGGAGE_HEADER)
        for key in [
            k
            for k in carrier
            if type(k) is str and len(k) == size and k != BAGGAGE_HEADER and k.lower() == "baggage"
        ]:
            del carrier[key]
    if baggage:
        if setter is None:
            carrier[BAGGAGE_HEADER] = baggage
        else:
            setter.set(carrier, BAGGAGE_HEADER, baggage)
    elif mutable and BAGGAGE_HEADER in carrier:
        del carrier[BAGGAGE_HEADER]  # it only held stale flowtrace members


def remote_span_context(
    carrier: Any, *, getter: Getter[Any] | None = None
) -> trace.SpanContext | None:
    """The producer's span context from ``traceparent`` (for a span link), or ``None``.

    ``None`` when the carrier has no ``traceparent``; a malformed one raises
    :class:`~flowtrace.errors.ContextPropagationError` (OTel would silently ignore it).
    """
    parent = _header(carrier, TRACEPARENT_HEADER, getter)
    if parent is None:
        return None
    parent = parent.strip(" \t")
    if (
        len(parent) > 512
        or not _TRACEPARENT.fullmatch(parent)
        or (parent.startswith("00") and len(parent) != 55)
    ):
        raise ContextPropagationError(
            f"malformed traceparent {parent[:80]!r}: expected "
            "'00-<32 hex trace id>-<16 hex span id>-<2 hex flags>' (not all zeros)"
        )
    headers = {TRACEPARENT_HEADER: parent}
    state = _header(carrier, TRACESTATE_HEADER, getter)
    if state is not None:
        headers[TRACESTATE_HEADER] = state
    span_context = trace.get_current_span(
        _TRACE_CONTEXT.extract(headers, context=Context())
    ).get_span_context()
    if not span_context.is_valid:  # pragma: no cover - the regex admits only valid ids
        raise ContextPropagationError(f"traceparent {parent[:80]!r} names an invalid span")
    return span_context


def otel_context(
    carrier: Any, *, getter: Getter[Any] | None = None, context: Context | None = None
) -> Context:
    """An OTel Context holding the carrier's remote span (as parent) and its flow context.

    Starts from an empty OTel Context unless ``context`` is given. Read the flow context
    back with :func:`flow_context_from_otel`. Malformed input raises
    :class:`~flowtrace.errors.ContextPropagationError`.
    """
    out = Context() if context is None else context
    span_context = remote_span_context(carrier, getter=getter)
    if span_context is not None:
        out = trace.set_span_in_context(trace.NonRecordingSpan(span_context), out)
    return set_value(_FLOW_KEY, extract(carrier, getter=getter), out)


def flow_context_from_otel(context: Context | None = None) -> FlowContext | None:
    """The flow context an OTel propagator extracted into ``context`` (default: current).

    ``None`` when no carrier with a ``baggage`` header was extracted into it. If the carrier
    was malformed or oversized this raises the :class:`ContextPropagationError` that
    :class:`FlowtracePropagator` recorded instead of raising inside OTel's instrumentation.
    The result is *untrusted*: compare it with the tenant your own resolvers trust.
    """
    value = get_value(_FLOW_KEY, context)
    if value is None or isinstance(value, FlowContext):
        return value
    assert isinstance(value, ContextPropagationError)
    raise ContextPropagationError(str(value)) from value


class FlowtracePropagator(TextMapPropagator):
    """OTel TextMapPropagator for the flowtrace members of the ``baggage`` header.

    Install it next to OTel's trace-context (and, if you use OTel baggage, *after* the
    W3C baggage propagator, which overwrites the header; this one merges)::

        set_global_textmap(CompositePropagator([
            TraceContextTextMapPropagator(), W3CBaggagePropagator(), FlowtracePropagator()]))

    ``inject`` writes :func:`flowtrace.current` (raising
    :class:`~flowtrace.errors.ContextPropagationError` when it cannot fit). ``extract``
    stores the carrier's flow context in the returned OTel Context under a private key,
    never in :func:`flowtrace.current`; read it with :func:`flow_context_from_otel`. A
    malformed carrier does not raise inside OTel's instrumentation: the error is stored
    and raised by :func:`flow_context_from_otel`, so whoever needs the context fails closed.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """Store the carrier's flow context (or its error) in a copy of ``context``."""
        if context is None:
            context = get_current()
        value: FlowContext | ContextPropagationError
        try:
            header = _header(carrier, BAGGAGE_HEADER, getter)
            if header is None:
                return context
            value = decode(header)
        except (ContextPropagationError, TypeError) as exc:
            _logger.warning("flowtrace context not extracted: %s", exc)
            value = (
                exc
                if isinstance(exc, ContextPropagationError)
                else (ContextPropagationError(str(exc)))
            )
        return set_value(_FLOW_KEY, value, context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Write the calling code's flow context into the ``baggage`` header (merging)."""
        baggage = _baggage_for(carrier, current())
        _write_baggage(carrier, baggage, None if setter is default_setter else setter)

    @property
    def fields(self) -> set[str]:
        """The header this propagator writes."""
        return {BAGGAGE_HEADER}
