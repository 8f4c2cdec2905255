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
from typing import Any, TypeVar, overload

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from ..errors import ConfigError
from ..flowcontext import EMPTY, FlowContext
from ..propagation import TokenVerifier
from ._consumer import ConsumerSpec, HeadersSource
from ._handler import HandlerSpec, Resolver
from ._instrument import Plan, instrument
from ._trust import Trust, TrustCheck

__all__ = ["HeadersSource", "Resolver", "consumer", "handler"]

F = TypeVar("F", bound=Callable[..., Any])


def _name_of(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return name if isinstance(name, str) else repr(func)


# --- handler ---------------------------------------------------------------------------------


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
    trust: Trust | None = None,
    verifier: TokenVerifier | None = None,
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
    trust: Trust | None = None,
    verifier: TokenVerifier | None = None,
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

    ``trust="required"`` verifies the carrier's ``Txn-Token`` with ``verifier`` (a
    :class:`flowtrace.trust.Verifier`) against the resolved context: a missing, invalid or
    mismatching token reports a ``txn_token_refused`` event and raises the
    :class:`~flowtrace.errors.TrustError` saying why. ``trust="optional"`` verifies a token
    when present and reports a ``txn_token`` event (``status="absent"``) when not.

    The span is named ``name`` (default: the function's ``__qualname__``), of ``kind``
    SERVER, records exceptions and sets error status. Use as ``@handler``,
    ``@handler("name")`` or ``@handler(tenant=..., ...)``.

    Example::

        from types import SimpleNamespace

        import flowtrace as ft

        @ft.handler(
            "GET /invoices",
            tenant=lambda request: request.claims["tenant"],   # verified credentials only
            user=lambda request: request.claims["sub"],
            purpose="billing",
            carrier=lambda request: request.headers,           # untrusted: only checked
        )
        def list_invoices(request):
            return ft.require_tenant()

        request = SimpleNamespace(claims={"tenant": "acme", "sub": "u-1"}, headers={})
        assert list_invoices(request) == "acme"
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
        spec = HandlerSpec(span_name, fields, resolve, carrier)
        prepare: Callable[[tuple[Any, ...], dict[str, Any]], FlowContext | Plan]
        if carrier is not None:
            prepare = spec.prepare
        elif resolve is None and not spec.resolvers:
            prepare = spec.constant_context
        elif resolve is None and len(spec.resolvers) <= 2:
            prepare = spec.fast_prepare()
        else:
            prepare = spec.context
        if trust is not None:
            if carrier is None:
                raise ConfigError(
                    f"handler {span_name!r}: trust={trust!r} reads the Txn-Token from the "
                    "request headers; pass carrier=lambda request: request.headers"
                )
            prepare = TrustCheck(
                span_name, trust, verifier, prepare, lambda a, k: carrier(*a, **k)
            )
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
    trust: Trust | None = None,
    verifier: TokenVerifier | None = None,
) -> Callable[[F], F]: ...


def consumer(
    name: Any = None,
    /,
    *,
    headers: HeadersSource = "headers",
    on_missing: Callable[..., Any] | None = None,
    allowed_tenants: Iterable[str] | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    trust: Trust | None = None,
    verifier: TokenVerifier | None = None,
) -> Any:
    """Decorate a message consumer: extract the producer's flow context, refuse tenant-less.

    ``headers`` says where the message headers are: a callable receiving the consumer's
    own arguments (``*args, **kwargs``) and returning a mapping (or ``None``); a
    ``"<parameter>.<attribute>"`` path (``"message.headers"`` for kombu's
    ``process(body, message)``); or an attribute name (default ``"headers"``) that exactly
    one argument must have, so ``message.headers`` and pika's ``properties.headers`` (the
    ``(channel, method, properties, body)`` callback) work as they are. Mapping keys are
    never read unless you say so with a callable: a message body is the sender's to write,
    and must not choose the tenant. Two arguments with the attribute raise
    :class:`~flowtrace.errors.ConfigError` at the first call.

    The headers are parsed with :func:`flowtrace.extract` into an *empty* context,
    installed as-is (never merged with the consuming thread's context). Then:

    * no tenant (or malformed headers): a ``message_refused`` event is reported and the
      call raises :class:`~flowtrace.errors.MissingTenantError`
      (:class:`~flowtrace.errors.ContextPropagationError` for malformed headers), or, when
      ``on_missing`` is given, ``on_missing`` is called instead of the body with the very
      same arguments (the message intact) and its result returned;
    * a tenant outside ``allowed_tenants``: reported, then
      :class:`~flowtrace.errors.TenantNotAllowedError`.

    * ``trust="required"``: the message's ``Txn-Token`` header must verify with
      ``verifier`` (a :class:`flowtrace.trust.Verifier`) and vouch for the baggage's tenant
      and user; otherwise a ``txn_token_refused`` event is reported and the typed
      :class:`~flowtrace.errors.TrustError` raised, or the message handed to
      ``on_missing`` intact. ``trust="optional"`` verifies a token when present and
      reports a ``txn_token`` event (``status="absent"``) when not (gradual rollout).

    The span (``name``, default the function's ``__qualname__``) is a CONSUMER span in a
    new trace with a link to the producer's span (from ``traceparent``).

    Example::

        from types import SimpleNamespace

        import flowtrace as ft

        dead_letters = []

        @ft.consumer("invoices", on_missing=dead_letters.append, allowed_tenants={"acme"})
        def on_invoice(message):
            return ft.current().tenant                   # exactly the producer's context

        with ft.context(tenant="acme"):
            headers = ft.inject({})
        assert on_invoice(SimpleNamespace(body=b"{}", headers=headers)) == "acme"
        on_invoice(SimpleNamespace(body=b"{}", headers={}))    # no tenant: dead-lettered
        assert len(dead_letters) == 1
    """
    if callable(name):
        return consumer()(name)
    span_attributes = dict(attributes) if attributes else None

    def decorate(func: F) -> F:
        span_name = name or _name_of(func)
        spec = ConsumerSpec(span_name, headers, on_missing, allowed_tenants, func)
        prepare: Callable[[tuple[Any, ...], dict[str, Any]], FlowContext | Plan]
        prepare = spec.fast_prepare()
        if trust is not None:
            prepare = TrustCheck(
                span_name, trust, verifier, spec.prepare, spec.carrier, on_missing
            )
        return instrument(
            func,
            prepare,
            name=span_name,
            kind=SpanKind.CONSUMER,
            attributes=span_attributes,
            span_setup=spec.span_setup,
        )

    return decorate
