"""``@flowtrace.handler`` and ``@flowtrace.consumer``: the flow context at every entry point.

A **handler** serves a request. The tenant and user come from *your* resolvers (verified
JWT claims, an API key lookup, the mTLS peer...), never from the untrusted request
headers. If the request's headers (the ``carrier``) also name a tenant and it differs,
the call is refused with :class:`~flowtrace.errors.TenantMismatchError` and reported::

    @flowtrace.handler(
        tenant=lambda request: request.state.claims["tenant"],
        user=lambda request: request.state.claims["sub"],
        purpose="billing",
        carrier=lambda request: request.headers,
    )
    async def get_invoice(request): ...

A **consumer** handles a message. Its flow context is extracted from the message headers
(written by :func:`flowtrace.inject` on the producer side) into an *empty* context, never
merged with whatever the consuming thread had. A message without a tenant is refused
(:class:`~flowtrace.errors.MissingTenantError`) or handed, intact, to ``on_missing``::

    @flowtrace.consumer(on_missing=dead_letter.append, allowed_tenants={"acme", "globex"})
    def on_invoice(message): ...

Both work on plain, async, generator and async-generator functions and methods, keep the
function's name, docstring, signature and ``inspect`` kind, and open an OpenTelemetry span
(SERVER for handlers, CONSUMER for consumers, linked to the producer's span) when tracing
is configured. With tracing not configured they do no span work at all.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, overload

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind
from opentelemetry.util.types import AttributeValue

from ._baggage_codec import decode as _decode_baggage
from ._observe import EventKind, notify
from ._otel_instrument import Plan, instrument
from .context import EMPTY, FIELDS, FlowContext, _current, _derive
from .errors import (
    ContextPropagationError,
    InvalidContextValueError,
    MissingTenantError,
    TenantMismatchError,
    TenantNotAllowedError,
)
from .propagation import BAGGAGE_HEADER, remote_span_context
from .propagation import _header as _baggage_header

__all__ = ["Resolver", "consumer", "handler"]

F = TypeVar("F", bound=Callable[..., Any])

Resolver = str | Callable[..., "str | None"] | None
"""A constant value, or a callable receiving the call's own arguments and returning one."""

HeadersSource = str | Callable[..., "Mapping[str, Any] | None"]



def _name_of(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return name if isinstance(name, str) else repr(func)


_MEMO_SIZE: Final = 1024
_W3C_KEYS: Final = frozenset({"baggage", "traceparent", "tracestate"})
_decoded: dict[str, FlowContext] = {}


def _extract(carrier: Mapping[str, Any]) -> FlowContext:
    """``flowtrace.extract(carrier)``, memoizing the (pure) parse of each baggage header.

    Messages of one tenant/user carry the same baggage string, so consumers parse each
    distinct header once. Exactly ``extract``: same header lookup, same decoder, and
    errors are never memoized.
    """
    if type(carrier) is dict and carrier.keys() <= _W3C_KEYS:
        # Only W3C keys, so no other spelling of "baggage" to combine: read it directly.
        header = carrier.get(BAGGAGE_HEADER)
        if header is None:
            return EMPTY
        if type(header) is str:
            hit = _decoded.get(header)
            if hit is not None:
                return hit
    header = _baggage_header(carrier, BAGGAGE_HEADER, None)
    if header is None:
        return EMPTY
    ctx = _decoded.get(header)
    if ctx is None:
        ctx = _decode_baggage(header)
        if len(_decoded) >= _MEMO_SIZE:
            _decoded.clear()
        _decoded[header] = ctx
    return ctx


def _remote_parent(carrier: Mapping[str, Any] | None) -> Any:
    if carrier is None:
        return None
    try:
        return remote_span_context(carrier)
    except ContextPropagationError:
        return None


# --- handler ---------------------------------------------------------------------------------


class _HandlerSpec:
    """Per-decoration state. Resolved contexts are memoized per (resolved values, outer
    context) so a hot handler pays validation once per distinct caller, not per call."""

    __slots__ = (
        "carrier",
        "constants",
        "last",
        "memo",
        "name",
        "require_tenant",
        "resolve",
        "resolver_names",
        "resolvers",
    )

    def __init__(
        self,
        name: str,
        fields: dict[str, Resolver],
        resolve: Callable[..., Mapping[str, str | None]] | None,
        carrier: Callable[..., Mapping[str, Any] | None] | None,
    ) -> None:
        self.name = name
        self.constants: dict[str, str] = {}
        names: list[str] = []
        resolvers: list[Callable[..., str | None]] = []
        for field, value in fields.items():
            if value is None:
                continue
            if callable(value):
                names.append(field)
                resolvers.append(value)
            else:
                self.constants[field] = value
        self.resolver_names = tuple(names)
        self.resolvers = tuple(resolvers)
        self.resolve = resolve
        self.carrier = carrier
        # A tenant source was declared: it must produce a tenant (fail closed).
        self.require_tenant = fields.get("tenant") is not None or resolve is not None
        self.last: tuple[FlowContext, FlowContext] | None = None
        self.memo: dict[tuple[object, ...], tuple[FlowContext, FlowContext]] = {}

    def _build(self, cur: FlowContext, fields: dict[str, object]) -> FlowContext:
        if self.require_tenant and fields.get("tenant") is None:
            raise MissingTenantError(
                f"handler {self.name!r}: the tenant resolver returned no tenant; refusing the "
                "request (check the credentials the resolver reads)"
            )
        return _derive(cur, fields)

    def constant_context(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
        """Fast ``prepare`` for handlers with constant fields only and no carrier."""
        cur = _current.get()
        last = self.last
        if last is not None and last[0] is cur:
            return last[1]
        ctx = self._build(cur, dict(self.constants))
        if _memoizable(cur, ctx):
            self.last = (cur, ctx)
        return ctx

    def _miss(self, cur: FlowContext, values: tuple[object, ...]) -> FlowContext:
        """Build, validate and memoize the context for ``values`` under ``cur``."""
        fields: dict[str, object] = dict(self.constants)
        fields.update(zip(self.resolver_names, values, strict=True))
        ctx = self._build(cur, fields)
        if _memoizable(cur, ctx):
            memo = self.memo
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[values] = (cur, ctx)
        return ctx

    def fast_prepare(self) -> Callable[[tuple[Any, ...], dict[str, Any]], FlowContext]:
        """A ``prepare`` specialised for one or two resolvers (the hot, common case)."""
        get_current = _current.get
        memo = self.memo
        miss = self._miss
        if len(self.resolvers) == 1:
            (r0,) = self.resolvers

            def prepare_one(args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
                cur = get_current()
                values = (r0(*args, **kwargs),)
                try:
                    hit = memo.get(values)
                except TypeError:  # unhashable: validation in _miss names the field
                    return miss(cur, values)
                if hit is not None and hit[0] is cur:
                    return hit[1]
                return miss(cur, values)

            return prepare_one
        r0, r1 = self.resolvers

        def prepare_two(args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
            cur = get_current()
            values = (r0(*args, **kwargs), r1(*args, **kwargs))
            try:
                hit = memo.get(values)
            except TypeError:  # unhashable: validation in _miss names the field
                return miss(cur, values)
            if hit is not None and hit[0] is cur:
                return hit[1]
            return miss(cur, values)

        return prepare_two

    def context(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
        """The resolved flow context for one call (also ``prepare`` without a carrier)."""
        cur = _current.get()
        if self.resolve is not None:
            fields = self._resolve_mapping(args, kwargs)
            fields.update(self.constants)
            for field, resolver in zip(self.resolver_names, self.resolvers, strict=True):
                fields[field] = resolver(*args, **kwargs)
            return self._build(cur, fields)
        resolvers = self.resolvers
        if not resolvers:
            last = self.last
            if last is not None and last[0] is cur:
                return last[1]
            ctx = self._build(cur, dict(self.constants))
            if _memoizable(cur, ctx):
                self.last = (cur, ctx)
            return ctx
        if len(resolvers) == 1:
            values: tuple[object, ...] = (resolvers[0](*args, **kwargs),)
        elif len(resolvers) == 2:
            values = (resolvers[0](*args, **kwargs), resolvers[1](*args, **kwargs))
        else:
            values = tuple([resolver(*args, **kwargs) for resolver in resolvers])
        try:
            hit = self.memo.get(values)
        except TypeError:  # unhashable value: validation in _miss names the field
            hit = None
        if hit is not None and hit[0] is cur:
            return hit[1]
        return self._miss(cur, values)

    def _resolve_mapping(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, object]:
        assert self.resolve is not None
        resolved = self.resolve(*args, **kwargs)
        if not isinstance(resolved, Mapping):
            raise InvalidContextValueError(
                "resolve", f"must return a mapping of field names, got {type(resolved)!r}"
            )
        fields: dict[str, object] = {}
        for key, value in resolved.items():
            if key not in FIELDS:
                raise InvalidContextValueError(
                    key, f"is not a field a handler resolves; use one of {', '.join(FIELDS)}"
                )
            fields[key] = value
        return fields

    def prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext | Plan:
        ctx = self.context(args, kwargs)
        if self.carrier is None:
            return ctx
        raw = self.carrier(*args, **kwargs)
        if raw is None:
            return ctx
        remote = _extract(raw)  # untrusted: ContextPropagationError when malformed
        if ctx.correlation_id is None and remote.correlation_id is not None:
            ctx = ctx.replace(correlation_id=remote.correlation_id)
        check = None
        if remote.tenant is not None and ctx.tenant is not None and remote.tenant != ctx.tenant:
            check = _mismatch(self.name, ctx.tenant, remote.tenant)
        return ctx if check is None else Plan(ctx, check=check)

    def span_setup(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Context | None, tuple[Link, ...]]:
        """Continue the caller's trace (its ``traceparent``), if the carrier names one."""
        assert self.carrier is not None
        return _child_of(self.carrier(*args, **kwargs))


def _memoizable(cur: FlowContext, ctx: FlowContext) -> bool:
    """Only derivations that report nothing (no cross-tenant switch) may be replayed."""
    return cur[0] is None or cur[0] == ctx[0]


def _mismatch(name: str, resolved: str, claimed: str) -> Callable[[], None]:
    def check() -> None:
        notify(
            EventKind.TENANT_MISMATCH,
            {"handler": name, "resolved_tenant": resolved, "carrier_tenant": claimed},
        )
        raise TenantMismatchError(
            f"handler {name!r}: the request headers name tenant {claimed!r} but the "
            f"credentials resolve to tenant {resolved!r}; refusing the request"
        )

    return check


def _child_of(carrier: Mapping[str, Any] | None) -> tuple[Context | None, tuple[Link, ...]]:
    remote = _remote_parent(carrier)
    if remote is None:
        return None, ()
    return trace.set_span_in_context(NonRecordingSpan(remote)), ()


@overload
def handler(name: F, /) -> F: ...


@overload
def handler(
    name: str | None = None,
    /,
    *,
    tenant: Resolver = None,
    user: Resolver = None,
    subject: Resolver = None,
    purpose: Resolver = None,
    legal_basis: Resolver = None,
    region: Resolver = None,
    correlation_id: Resolver = None,
    resolve: Callable[..., Mapping[str, str | None]] | None = None,
    carrier: Callable[..., Mapping[str, Any] | None] | None = None,
    kind: SpanKind = SpanKind.SERVER,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Callable[[F], F]: ...


def handler(
    name: Any = None,
    /,
    *,
    tenant: Resolver = None,
    user: Resolver = None,
    subject: Resolver = None,
    purpose: Resolver = None,
    legal_basis: Resolver = None,
    region: Resolver = None,
    correlation_id: Resolver = None,
    resolve: Callable[..., Mapping[str, str | None]] | None = None,
    carrier: Callable[..., Mapping[str, Any] | None] | None = None,
    kind: SpanKind = SpanKind.SERVER,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Decorate a request handler: resolve its flow context, enter it, open a span.

    Each field (``tenant``, ``user``, ``subject``, ``purpose``, ``legal_basis``, ``region``,
    ``correlation_id``) is a constant or a *resolver*: a callable called with the handler's
    own arguments (``*args, **kwargs``) that returns the value (or ``None``). ``resolve``
    is one callable returning a mapping of several fields at once (e.g. from verified JWT
    claims); per-field resolvers win over it. The context is derived from the current one,
    so a different tenant inside a tenant scope raises
    :class:`~flowtrace.errors.TenantSwitchError`.

    When a tenant source (``tenant=`` or ``resolve=``) is declared and yields no tenant, the
    call raises :class:`~flowtrace.errors.MissingTenantError` before the body runs.

    ``carrier`` returns the request's untrusted headers. They are parsed with
    :func:`flowtrace.extract` (malformed -> :class:`~flowtrace.errors.ContextPropagationError`);
    if they name a tenant other than the resolved one, a ``tenant_mismatch`` event is
    reported and :class:`~flowtrace.errors.TenantMismatchError` raised. A tenant in the
    headers is never adopted; only ``correlation_id`` is taken from them when no resolver
    set it, and the span continues the caller's trace (its ``traceparent``).

    The span is named ``name`` (default: the function's ``__qualname__``), of ``kind``
    SERVER, records exceptions and sets error status. Use as ``@handler``,
    ``@handler("name")`` or ``@handler(tenant=..., ...)``.
    """
    if callable(name):
        return handler()(name)
    fields: dict[str, Resolver] = {
        "tenant": tenant,
        "user": user,
        "subject": subject,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "region": region,
        "correlation_id": correlation_id,
    }
    span_attributes = dict(attributes) if attributes else None
    for field, value in fields.items():
        if value is not None and not callable(value):
            EMPTY.replace(**{field: value})  # constants are validated here, once

    def decorate(func: F) -> F:
        span_name = name or _name_of(func)
        spec = _HandlerSpec(span_name, fields, resolve, carrier)
        prepare: Callable[[tuple[Any, ...], dict[str, Any]], FlowContext | Plan]
        if carrier is not None:
            prepare = spec.prepare
        elif resolve is None and not spec.resolvers:
            prepare = spec.constant_context
        elif resolve is None and len(spec.resolvers) <= 2:
            prepare = spec.fast_prepare()
        else:
            prepare = spec.context
        return instrument(
            func,
            prepare,
            name=span_name,
            kind=kind,
            attributes=span_attributes,
            span_setup=spec.span_setup if carrier is not None else None,
        )

    return decorate


# --- consumer --------------------------------------------------------------------------------


_SCALARS: Final = frozenset({str, bytes, bytearray, memoryview, int, float, bool, type(None)})


def _find_headers(args: tuple[Any, ...], kwargs: dict[str, Any], key: str) -> Any:
    """Find the headers among the call's arguments (``x.headers`` or ``x["headers"]``)."""
    for arg in (*args, *kwargs.values()) if kwargs else args:
        kind = type(arg)
        if kind is dict:
            if key in arg:
                return arg[key]
            continue
        if kind in _SCALARS:
            continue
        found = getattr(arg, key, _MISSING)
        if found is not _MISSING and not callable(found):
            return found
        if isinstance(arg, Mapping) and key in arg:
            return arg[key]
    raise TypeError(
        f"no argument of the consumer has a {key!r} attribute or key; pass "
        "headers=callable(*args, **kwargs) returning the message headers"
    )


_MISSING: Final = object()


class _ConsumerSpec:
    __slots__ = ("allowed", "headers", "name", "on_missing")

    def __init__(
        self,
        name: str,
        headers: HeadersSource,
        on_missing: Callable[..., Any] | None,
        allowed_tenants: Iterable[str] | None,
    ) -> None:
        if not (isinstance(headers, str) or callable(headers)):
            raise TypeError("consumer(headers=...) takes an attribute name or a callable")
        if isinstance(allowed_tenants, str):
            raise TypeError(
                "consumer(allowed_tenants=...) takes a collection of tenants, not a str"
            )
        self.name = name
        self.headers = headers
        self.on_missing = on_missing
        self.allowed = frozenset(allowed_tenants) if allowed_tenants is not None else None

    def carrier(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        headers = self.headers
        if type(headers) is str:
            return _find_headers(args, kwargs, headers)
        return headers(*args, **kwargs)  # type: ignore[operator]

    def prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext | Plan:
        headers = self.headers  # a consumer without headers is a coding error (TypeError)
        if type(headers) is str:
            raw = _find_headers(args, kwargs, headers)
        else:
            raw = headers(*args, **kwargs)  # type: ignore[operator]
        try:
            if not raw:
                ctx = EMPTY
            elif type(raw) is dict or isinstance(raw, Mapping):
                ctx = _extract(raw)
            else:
                raise ContextPropagationError(
                    f"consumer {self.name!r}: message headers must be a mapping, "
                    f"got {type(raw).__name__}"
                )
        except ContextPropagationError as exc:
            return self._refuse(EMPTY, "malformed_headers", exc)
        tenant = ctx[0]
        if tenant is None:
            error = MissingTenantError(
                f"consumer {self.name!r} refused a message without a tenant in its headers; "
                "inject the flow context on the producer side (flowtrace.inject) or pass "
                "on_missing= to dead-letter such messages"
            )
            return self._refuse(ctx, "missing_tenant", error)
        if self.allowed is not None and tenant not in self.allowed:
            refused = TenantNotAllowedError(
                f"consumer {self.name!r} does not accept tenant {tenant!r}; "
                "add it to allowed_tenants if this is intended"
            )
            return Plan(
                ctx, check=_refusal(self.name, "tenant_not_allowed", refused, dead_lettered=False)
            )
        return ctx

    def fast_prepare(self) -> Callable[[tuple[Any, ...], dict[str, Any]], FlowContext | Plan]:
        """``prepare`` with a shortcut for the common case, falling back to it otherwise.

        Shortcut: one message argument whose headers (by attribute or key) are a dict of
        W3C keys only, whose baggage string was parsed before, naming an allowed tenant.
        It returns exactly what :meth:`prepare` would; anything else goes to :meth:`prepare`.
        """
        key = self.headers
        slow = self.prepare
        if type(key) is not str:
            return slow
        allowed = self.allowed
        decoded = _decoded
        w3c = _W3C_KEYS

        def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext | Plan:
            if len(args) == 1 and not kwargs:
                arg = args[0]
                raw = arg.get(key) if type(arg) is dict else getattr(arg, key, None)
                if type(raw) is dict:
                    header = raw.get(BAGGAGE_HEADER)
                    size = len(raw)
                    # Only W3C keys (so no other spelling of "baggage"); cheapest checks first.
                    if type(header) is str and (
                        size == 1 or (size == 2 and "traceparent" in raw) or raw.keys() <= w3c
                    ):
                        ctx = decoded.get(header)
                        if ctx is not None:
                            tenant = ctx[0]
                            if tenant is not None and (allowed is None or tenant in allowed):
                                return ctx
            return slow(args, kwargs)

        return prepare

    def _refuse(self, ctx: FlowContext, reason: str, error: Exception) -> Plan:
        if self.on_missing is None:
            return Plan(ctx, check=_refusal(self.name, reason, error, dead_lettered=False))
        return Plan(
            ctx,
            check=_refusal(self.name, reason, None, dead_lettered=True),
            substitute=self.on_missing,
        )

    def span_setup(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Context | None, tuple[Link, ...]]:
        """A new trace, linked to the producer's span: never the consuming thread's span."""
        try:
            raw = self.carrier(args, kwargs)
        except TypeError:
            raw = None
        remote = _remote_parent(raw) if raw and isinstance(raw, Mapping) else None
        return Context(), ((Link(remote),) if remote is not None else ())


def _refusal(
    name: str, reason: str, error: Exception | None, *, dead_lettered: bool
) -> Callable[[], None]:
    def check() -> None:
        notify(
            EventKind.MESSAGE_REFUSED,
            {"consumer": name, "reason": reason, "dead_lettered": dead_lettered},
        )
        if error is not None:
            raise error

    return check


@overload
def consumer(name: F, /) -> F: ...


@overload
def consumer(
    name: str | None = None,
    /,
    *,
    headers: HeadersSource = "headers",
    on_missing: Callable[..., Any] | None = None,
    allowed_tenants: Iterable[str] | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Callable[[F], F]: ...


def consumer(
    name: Any = None,
    /,
    *,
    headers: HeadersSource = "headers",
    on_missing: Callable[..., Any] | None = None,
    allowed_tenants: Iterable[str] | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Decorate a message consumer: extract the producer's flow context, refuse tenant-less.

    ``headers`` says where the message headers are: a callable receiving the consumer's
    own arguments (``*args, **kwargs``) and returning a mapping (or ``None``), or an
    attribute/key name (default ``"headers"``) looked up on each argument in turn, so
    ``message.headers``, ``{"headers": ...}`` and pika's ``properties.headers`` (the
    ``(channel, method, properties, body)`` callback) work as they are.

    The headers are parsed with :func:`flowtrace.extract` into an *empty* context,
    installed as-is (never merged with the consuming thread's context). Then:

    * no tenant (or malformed headers): a ``message_refused`` event is reported and the
      call raises :class:`~flowtrace.errors.MissingTenantError`
      (:class:`~flowtrace.errors.ContextPropagationError` for malformed headers), or, when
      ``on_missing`` is given, ``on_missing`` is called instead of the body with the very
      same arguments (the message intact) and its result returned;
    * a tenant outside ``allowed_tenants``: reported, then
      :class:`~flowtrace.errors.TenantNotAllowedError`.

    The span (``name``, default the function's ``__qualname__``) is a CONSUMER span in a
    new trace with a link to the producer's span (from ``traceparent``).
    """
    if callable(name):
        return consumer()(name)
    span_attributes = dict(attributes) if attributes else None

    def decorate(func: F) -> F:
        span_name = name or _name_of(func)
        spec = _ConsumerSpec(span_name, headers, on_missing, allowed_tenants)
        return instrument(
            func,
            spec.fast_prepare(),
            name=span_name,
            kind=SpanKind.CONSUMER,
            attributes=span_attributes,
            span_setup=spec.span_setup,
        )

    return decorate
