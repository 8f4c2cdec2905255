"""Carry the flow context across processes: W3C ``traceparent`` + ``baggage``.

Producer side::

    headers = flowtrace.inject({})          # traceparent/tracestate + baggage

Consumer side::

    ctx = flowtrace.extract(headers)        # a fresh FlowContext, or ContextPropagationError
    parent = remote_span_context(headers)   # the producer's span, for a span link

:func:`extract` always starts from an *empty* context (the ambient one is never merged in).
It is strict about flowtrace's own members: a duplicated, unknown or undecodable
``flowtrace.`` member raises :class:`~flowtrace.errors.ContextPropagationError`, never a
partial context, never a silently dropped tenant. It is liberal about everyone else's:
a malformed foreign member is dropped and counted (a ``baggage_dropped`` event). A
carrier is untrusted input: nothing here enters the extracted context for you. Handlers
compare it with the tenant their own resolvers trust; consumers inside your trust
boundary enter it starting from an empty context.

:func:`inject` never fails because of what a carrier brought in: foreign members past a
W3C limit are dropped (counted, reported), flowtrace's own never are. Identity members
(``flowtrace.user``, ``flowtrace.subject``) are only written for destinations in the
trust domain (``configure(trust_domain=[...])``) or on explicit ``identity=True``.

:class:`FlowtracePropagator` plugs the same codec into OpenTelemetry, so OTel's own
instrumentations (requests, httpx, pika, kafka, ...) carry the flow context. The baggage
keys, encoding and limits are specified in docs/spec/baggage.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping, Sequence
from contextvars import ContextVar, Token
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

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

from .. import _settings
from ..errors import ContextPropagationError
from ..flowcontext import FlowContext, current, notify
from ._baggage_codec import encode_merged, parse, split_foreign
from ._residency import guard_destination
from ._txn import TXN_TOKEN_HEADER, TokenVerifier, check_token

__all__ = [
    "BAGGAGE_DROPPED",
    "BAGGAGE_HEADER",
    "FlowtracePropagator",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "extract",
    "flow_context_from_otel",
    "inject",
    "otel_context",
    "received_foreign",
    "remote_span_context",
    "trusted_destination",
]

BAGGAGE_HEADER: Final = "baggage"
"""The W3C baggage header, which carries the flow context (docs/spec/baggage.md).

Example::

    import flowtrace as ft
    from flowtrace.propagation import BAGGAGE_HEADER

    with ft.context(tenant="acme"):
        headers = ft.inject({})
    assert "acme" in headers[BAGGAGE_HEADER]
"""
TRACEPARENT_HEADER: Final = "traceparent"
"""The W3C trace-context header naming the caller's trace and span.

Example::

    import flowtrace as ft
    from flowtrace.propagation import TRACEPARENT_HEADER

    headers = {TRACEPARENT_HEADER: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert ft.propagation.remote_span_context(headers).trace_id > 0
"""
TRACESTATE_HEADER: Final = "tracestate"
"""The W3C trace-context header with vendor state; passed along with ``traceparent``.

Example::

    from flowtrace.propagation import TRACEPARENT_HEADER, TRACESTATE_HEADER, remote_span_context

    headers = {
        TRACEPARENT_HEADER: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        TRACESTATE_HEADER: "vendor=opaque",
    }
    assert remote_span_context(headers).trace_state.get("vendor") == "opaque"
"""
BAGGAGE_DROPPED: Final = "baggage_dropped"
"""Flow event kind: foreign baggage members were dropped (``direction``, ``reason``, ``count``).

Example::

    import flowtrace as ft
    from flowtrace.propagation import BAGGAGE_DROPPED

    seen = []
    ft.add_observer(seen.append)
    try:
        ft.extract({"baggage": "flowtrace.tenant=acme,not a member"})   # malformed foreign
    finally:
        ft.remove_observer(seen.append)
    assert BAGGAGE_DROPPED in [event.kind for event in seen]
"""

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


def extract(
    carrier: Any, *, getter: Getter[Any] | None = None, verifier: TokenVerifier | None = None
) -> FlowContext:
    """The flow context a carrier names, parsed into a fresh :class:`FlowContext`.

    Never merged with the ambient context. A carrier without a ``baggage`` header (or
    without flowtrace members) gives an empty context. Foreign baggage members are
    ignored; malformed ones are dropped and reported (``baggage_dropped``), whatever their
    number or size. A duplicated, unknown or undecodable ``flowtrace.`` member raises
    :class:`~flowtrace.errors.ContextPropagationError`; a carrier that is not a mapping
    needs an OTel ``getter``. With ``verifier`` (a ``flowtrace.trust.Verifier``) the
    carrier's ``Txn-Token`` must verify and vouch for the tenant and user extracted, or a
    :class:`~flowtrace.errors.TrustError` is raised.

    Example::

        import flowtrace as ft

        ctx = ft.extract({"baggage": "flowtrace.tenant=acme,flowtrace.user=u-1"})
        assert (ctx.tenant, ctx.user) == ("acme", "u-1")
        try:
            ft.extract({"baggage": "flowtrace.tenant=%zz"})   # malformed: nothing extracted
        except ft.ContextPropagationError as error:
            print(error)
    """
    header = _header(carrier, BAGGAGE_HEADER, getter)
    if header is None:
        ctx = FlowContext()
    else:
        parsed = parse(header)
        if parsed.dropped:
            report_dropped("extract", "malformed", parsed.dropped)
        ctx = parsed.context
    return ctx if verifier is None else check_token(carrier, ctx, verifier)


def report_dropped(direction: str, reason: str, count: int) -> None:
    """Report a ``baggage_dropped`` event; never raises (dropping foreign members is not
    a security decision, and inject must not fail over incoming content)."""
    try:
        notify(BAGGAGE_DROPPED, {"direction": direction, "reason": reason, "count": count})
    except Exception:
        _logger.exception("flowtrace could not report %d dropped baggage members", count)


# The valid foreign members of the request or message being handled (set by
# @handler/@consumer around their body) that inject forwards (W3C: SHOULD propagate).
_received: ContextVar[tuple[str, ...]] = ContextVar("flowtrace.received_baggage", default=())


def received_foreign() -> tuple[str, ...]:
    """The foreign baggage members of the request or message being handled, as received.

    :func:`inject` forwards them downstream; outside a handler or consumer it is empty.

    Example::

        import flowtrace as ft
        from flowtrace.propagation import received_foreign

        @ft.consumer("orders")
        def on_order(message):
            return received_foreign()

        with ft.context(tenant="acme"):
            headers = ft.inject({"baggage": "vendor.flag=1"})
        message = type("Message", (), {"headers": headers})()
        assert on_order(message) == ("vendor.flag=1",)
        assert received_foreign() == ()
    """
    return _received.get()


def enter_received(members: tuple[str, ...]) -> Token[tuple[str, ...]] | None:
    """Make ``members`` the received foreign members (``None``: nothing to change).

    For the decorators, around a handler's or consumer's body; pair with
    :func:`leave_received` in the same context.
    """
    return _received.set(members) if members else None


def leave_received(token: Token[tuple[str, ...]] | None) -> None:
    """Undo :func:`enter_received`."""
    if token is not None:
        _received.reset(token)


def inject(
    carrier: M,
    context: FlowContext | None = None,
    *,
    setter: Setter[M] | None = None,
    identity: bool | None = None,
    destination: str | None = None,
    txn_token: str | None = None,
) -> M:
    """Write ``traceparent``/``tracestate`` and ``baggage`` for ``context`` into ``carrier``.

    ``context`` defaults to :func:`flowtrace.current`; the trace headers come from the
    current OTel span (none when no span is recording). Foreign members of an existing
    ``baggage`` header are kept, then those of the request being handled (see
    :func:`received_foreign`); stale ``flowtrace.`` members are replaced. Foreign members
    that would break a W3C limit, or are malformed, are dropped and reported
    (``baggage_dropped``): incoming content never makes this raise. flowtrace's own members
    are never dropped: a context that cannot fit raises
    :class:`~flowtrace.errors.ContextPropagationError` (nothing is written then).

    ``flowtrace.user`` and ``flowtrace.subject`` identify people: they are written only when
    ``identity=True``, or, with ``identity`` left ``None``, when ``destination`` (a URL or
    host) is in ``configure(trust_domain=[...])``. ``txn_token`` (from
    ``flowtrace.trust.mint``) is written as the ``txn-token`` header. With a residency
    policy (``configure(residency=...)``), ``destination`` is checked first: a destination
    whose region the context's region forbids raises
    :class:`~flowtrace.errors.ResidencyViolationError` and nothing is written. Returns
    ``carrier``.

    Example::

        import flowtrace as ft

        with ft.context(tenant="acme", user="u-1"):
            assert ft.inject({})["baggage"] == "flowtrace.tenant=acme"   # no identity
            headers = ft.inject({}, identity=True)                        # our own service
        assert headers["baggage"] == "flowtrace.tenant=acme,flowtrace.user=u-1"
    """
    flow = current() if context is None else context
    if type(flow) is not FlowContext:
        raise TypeError(f"context must be a FlowContext, got {type(flow).__name__}")
    if destination is not None:
        guard_destination(destination, data_region=flow.region)
    if identity is None:
        identity = trusted_destination(destination)
    baggage = _baggage_for(carrier, flow, identity)
    _TRACE_CONTEXT.inject(carrier, setter=default_setter if setter is None else setter)
    _write_baggage(carrier, baggage, setter)
    if txn_token is not None:
        (default_setter if setter is None else setter).set(carrier, TXN_TOKEN_HEADER, txn_token)
    return carrier


def trusted_destination(destination: str | None) -> bool:
    """Whether ``destination`` (a URL or host) is in ``configure(trust_domain=[...])``.

    Identity members (user, subject) are injected only for trusted destinations.

    Example::

        import flowtrace as ft
        from flowtrace.propagation import trusted_destination

        ft.configure(trust_domain=["*.internal.example"])
        assert trusted_destination("https://billing.internal.example/v1/invoices")
        assert not trusted_destination("https://api.partner.example")
        ft.configure(trust_domain=[])                # back to trusting nothing
    """
    if destination is None:
        return False
    patterns = _settings.settings().trust_domain
    return bool(patterns) and _in_trust_domain(destination, patterns)


@lru_cache(maxsize=1024)
def _in_trust_domain(destination: str, patterns: tuple[str, ...]) -> bool:
    """Whether the host of ``destination`` (a URL or ``host[:port]``) matches a pattern."""
    text = destination.strip()
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname
    except ValueError:  # e.g. a bad port or IPv6 literal: not a destination we trust
        return False
    host = (host or "").rstrip(".")
    return bool(host) and any(fnmatchcase(host, pattern) for pattern in patterns)


def _baggage_for(carrier: Any, flow: FlowContext, identity: bool) -> str:
    """Our members, then the foreign ones already in the carrier, then the received ones."""
    foreign: Sequence[str] = ()
    malformed = 0
    if carrier:
        try:
            existing = _header(carrier, BAGGAGE_HEADER, None)
        except TypeError:  # a carrier only a custom setter understands: nothing to merge
            existing = None
        except ContextPropagationError:  # unreadable (e.g. non-ASCII bytes): replaced
            existing, malformed = None, 1
        if existing:
            foreign, malformed = split_foreign(existing)
    received = _received.get()
    if received:
        foreign = _merge_received(list(foreign), received)
    elif not foreign and not malformed:
        return encode_merged(flow, (), identity=identity)[0]
    if malformed:
        report_dropped("inject", "malformed", malformed)
    baggage, dropped = encode_merged(flow, foreign, identity=identity)
    if dropped:
        report_dropped("inject", "limit", dropped)
    return baggage


def _merge_received(foreign: list[str], received: tuple[str, ...]) -> list[str]:
    """Append the received members whose keys the carrier does not already hold."""
    if not foreign:
        return list(received)
    keys = {member.partition("=")[0].rstrip(" \t") for member in foreign}
    foreign.extend(m for m in received if m.partition("=")[0].rstrip(" \t") not in keys)
    return foreign


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

    Example::

        from opentelemetry import trace

        import flowtrace as ft
        from flowtrace.propagation import remote_span_context

        headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
        producer = remote_span_context(headers)
        assert producer is not None and producer.is_remote
        link = trace.Link(producer)                  # link a consumer span to the producer
        assert remote_span_context({}) is None
        try:
            remote_span_context({"traceparent": "00-bogus"})
        except ft.ContextPropagationError as exc:
            print(exc)
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

    Example::

        from opentelemetry import context as otel

        import flowtrace as ft
        from flowtrace.propagation import flow_context_from_otel, otel_context

        with ft.context(tenant="acme"):
            headers = ft.inject({})
        ctx = otel_context(headers)          # e.g. the parent of a span you start yourself
        token = otel.attach(ctx)
        try:
            assert flow_context_from_otel().tenant == "acme"
        finally:
            otel.detach(token)
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

    Example::

        from opentelemetry.context import Context

        import flowtrace as ft
        from flowtrace.propagation import FlowtracePropagator, flow_context_from_otel

        with ft.context(tenant="acme", purpose="billing"):
            headers = ft.inject({})
        ctx = FlowtracePropagator().extract(headers, context=Context())
        assert flow_context_from_otel(ctx).purpose == "billing"
        assert flow_context_from_otel(Context()) is None
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
    :class:`~flowtrace.errors.ContextPropagationError` only when flowtrace's own members
    cannot fit; foreign members past a limit are dropped and reported). Identity members
    go only to a destination in the trust domain: the current client span's
    ``server.address`` / ``url.full`` / ``http.url`` attribute names it. ``extract``
    stores the carrier's flow context in the returned OTel Context under a private key,
    never in :func:`flowtrace.current`; read it with :func:`flow_context_from_otel`. A
    malformed carrier does not raise inside OTel's instrumentation: the error is stored
    and raised by :func:`flow_context_from_otel`, so whoever needs the context fails closed.

    Example::

        import flowtrace as ft
        from flowtrace.propagation import flow_context_from_otel

        # Usually selected by name: OTEL_PROPAGATORS=tracecontext,flowtrace
        propagator = ft.FlowtracePropagator()
        carrier: dict[str, str] = {}
        with ft.context(tenant="acme"):
            propagator.inject(carrier)
        otel_context = propagator.extract(carrier)
        assert flow_context_from_otel(otel_context).tenant == "acme"
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
            parsed = parse(header)
            if parsed.dropped:
                report_dropped("extract", "malformed", parsed.dropped)
            value = parsed.context
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
        identity = trusted_destination(_span_destination(context))
        baggage = _baggage_for(carrier, current(), identity)
        _write_baggage(carrier, baggage, None if setter is default_setter else setter)

    @property
    def fields(self) -> set[str]:
        """The header this propagator writes."""
        return {BAGGAGE_HEADER}


# Client span attributes naming where a request goes (OTel semantic conventions, old and new).
_DESTINATION_ATTRIBUTES: Final = ("server.address", "url.full", "http.url", "net.peer.name")
_OUTGOING: Final = (trace.SpanKind.CLIENT, trace.SpanKind.PRODUCER)


def _span_destination(context: Context | None) -> str | None:
    """The host or URL the current client span says the request goes to, if any.

    Only CLIENT and PRODUCER spans name a destination: a SERVER span's ``server.address``
    is this service itself, which says nothing about where a carrier goes.
    """
    span = trace.get_current_span(context)
    if getattr(span, "kind", None) not in _OUTGOING:
        return None
    attributes = getattr(span, "attributes", None)
    if not isinstance(attributes, Mapping):
        return None
    for name in _DESTINATION_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return value
    return None
