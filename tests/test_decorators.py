"""@flowtrace.handler and @flowtrace.consumer: context, spans, refusals, every function kind."""

from __future__ import annotations

import asyncio
import inspect
import random
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode

import flowtrace as ft
from flowtrace.decorators._instrument import active_tracer
from flowtrace.propagation import inject
from flowtrace.testing import Capture


@dataclass
class Request:
    claims: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Message:
    body: bytes
    headers: dict[str, Any] | None = None


def tenant_of(request: Request) -> str | None:
    return request.claims.get("tenant")


def user_of(request: Request) -> str | None:
    return request.claims.get("sub")


def headers_for(**fields: str) -> dict[str, str]:
    with ft.context(**fields):
        return inject({}, identity=True)  # a producer inside the trust domain


# --- handler: context --------------------------------------------------------------------


def test_handler_enters_resolved_context_and_restores() -> None:
    """The body sees the resolved context; the caller's context is unchanged afterwards."""

    @ft.handler(tenant=tenant_of, user=user_of, purpose="billing", region="eu")
    def serve(request: Request) -> ft.FlowContext:
        return ft.current()

    seen = serve(Request({"tenant": "acme", "sub": "u-1"}))
    assert seen == ft.FlowContext(tenant="acme", user="u-1", purpose="billing", region="eu")
    assert ft.current().is_empty


def test_handler_resolvers_get_the_call_arguments() -> None:
    """Resolvers receive exactly the positional and keyword arguments of the call."""
    calls: list[tuple[Any, ...]] = []

    def resolve_tenant(*args: Any, **kwargs: Any) -> str:
        calls.append((args, kwargs))
        return "acme"

    @ft.handler(tenant=resolve_tenant)
    def serve(a: int, b: int = 0, *, c: str = "") -> str | None:
        return ft.current().tenant

    assert serve(1, b=2, c="x") == "acme"
    assert calls == [((1,), {"b": 2, "c": "x"})]


def test_handler_resolve_mapping_and_field_resolvers_combine() -> None:
    """resolve= supplies several fields at once; per-field resolvers win over it."""

    @ft.handler(resolve=lambda r: {"tenant": r.claims["tenant"], "user": "from-map"}, user="u-9")
    def serve(request: Request) -> ft.FlowContext:
        return ft.current()

    assert serve(Request({"tenant": "acme"})) == ft.FlowContext(tenant="acme", user="u-9")


def test_handler_without_resolved_tenant_is_refused() -> None:
    """A declared tenant source that yields nothing raises MissingTenantError; body never runs."""
    ran = []

    @ft.handler(tenant=tenant_of)
    def serve(request: Request) -> None:
        ran.append(request)

    with pytest.raises(ft.MissingTenantError, match="serve"):
        serve(Request({}))
    assert ran == []


def test_handler_inside_other_tenant_is_a_tenant_switch() -> None:
    """A handler resolving tenant B inside a tenant-A scope fails closed."""

    @ft.handler(tenant="globex")
    def serve() -> None:
        raise AssertionError("must not run")

    with ft.context(tenant="acme"), pytest.raises(ft.TenantSwitchError):
        serve()


def test_handler_rejects_invalid_constant_at_decoration() -> None:
    """Constant field values are validated once, when decorating."""
    with pytest.raises(ft.InvalidContextValueError, match="tenant"):
        ft.handler(tenant="bad\nvalue")


def test_handler_resolve_with_unknown_field_is_an_error() -> None:
    """resolve= returning a key that is not a context field raises InvalidContextValueError."""

    @ft.handler(resolve=lambda: {"tenant": "acme", "tennant": "typo"})
    def serve() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ft.InvalidContextValueError, match="tennant"):
        serve()


# --- handler: untrusted carrier ------------------------------------------------------------


def test_carrier_with_other_tenant_is_a_reported_mismatch(flowtrace_capture: Capture) -> None:
    """Headers naming another tenant: event reported, TenantMismatchError, body never runs."""
    ran = []

    @ft.handler(tenant=tenant_of, carrier=lambda r: r.headers)
    def serve(request: Request) -> None:
        ran.append(request)

    request = Request({"tenant": "acme"}, headers_for(tenant="globex"))
    with pytest.raises(ft.TenantMismatchError, match="globex"):
        serve(request)
    assert ran == []
    (event,) = flowtrace_capture.events(ft.EventKind.TENANT_MISMATCH)
    assert event.attributes["resolved_tenant"] == "acme"
    assert event.attributes["carrier_tenant"] == "globex"
    span = flowtrace_capture.span(serve.__qualname__)
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["flowtrace.tenant_mismatch", "exception"]


def test_carrier_tenant_is_never_adopted() -> None:
    """With no tenant resolver, a tenant in the untrusted headers is ignored, not adopted."""

    @ft.handler(carrier=lambda r: r.headers)
    def serve(request: Request) -> str | None:
        return ft.current().tenant

    assert serve(Request({}, headers_for(tenant="globex"))) is None


def test_carrier_correlation_id_and_trace_continue(flowtrace_capture: Capture) -> None:
    """Same tenant: correlation id adopted, and the span joins the caller's trace."""
    tracer = flowtrace_capture.provider.get_tracer("client")
    with tracer.start_as_current_span("client-call") as client:
        headers = headers_for(tenant="acme", correlation_id="order-7")

    @ft.handler(tenant=tenant_of, carrier=lambda r: r.headers)
    def serve(request: Request) -> str | None:
        return ft.current().correlation_id

    assert serve(Request({"tenant": "acme"}, headers)) == "order-7"
    span = flowtrace_capture.span(serve.__qualname__)
    assert span.context.trace_id == client.get_span_context().trace_id
    assert span.parent is not None
    assert span.parent.span_id == client.get_span_context().span_id


def test_malformed_carrier_is_refused() -> None:
    """Malformed untrusted headers raise ContextPropagationError before the body runs."""

    # Ambiguous flowtrace members (foreign junk alone is dropped since issue 10 item 17).
    @ft.handler(
        tenant="acme", carrier=lambda: {"baggage": "flowtrace.tenant=acme,flowtrace.tenant=b"}
    )
    def serve() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ft.ContextPropagationError):
        serve()


# --- handler: spans ------------------------------------------------------------------------


def test_handler_span_carries_context_and_records_errors(flowtrace_capture: Capture) -> None:
    """SERVER span named after the function, flow attributes, exception recorded, re-raised."""

    @ft.handler(tenant="acme", user="u-1", purpose="billing")
    def charge(amount: int) -> None:
        raise ValueError(f"bad amount {amount}")

    with pytest.raises(ValueError, match="bad amount 3"):
        charge(3)
    span = flowtrace_capture.span(charge.__qualname__)
    assert span.kind is SpanKind.SERVER
    assert flowtrace_capture.flow_attributes(span) == {
        "tenant": "acme",
        "user": "u-1",
        "purpose": "billing",
    }
    assert span.attributes is not None
    assert span.attributes["enduser.id"] == "u-1"
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_handler_named_span_and_bare_forms(flowtrace_capture: Capture) -> None:
    """@handler, @handler("name") and extra attributes all work."""

    @ft.handler
    def bare() -> int:
        return 1

    @ft.handler("GET /invoices", attributes={"http.route": "/invoices"})
    def named() -> int:
        return 2

    assert (bare(), named()) == (1, 2)
    assert flowtrace_capture.span(bare.__qualname__).kind is SpanKind.SERVER
    attrs = flowtrace_capture.span("GET /invoices").attributes
    assert attrs is not None
    assert attrs["http.route"] == "/invoices"


def test_no_tracing_configured_means_no_span_work() -> None:
    """With OTel's default provider, the decorator still scopes the context, and opens no span."""
    assert active_tracer() is None

    @ft.handler(tenant="acme")
    def serve() -> str | None:
        return ft.current().tenant

    assert serve() == "acme"


# --- every function kind -------------------------------------------------------------------


def test_signature_name_and_inspect_kind_are_preserved() -> None:
    """Wrappers keep name, doc, signature and the sync/async/generator kind."""

    def plain(a: int, *, b: str = "x") -> int:
        """Plain."""
        return a

    async def coro(a: int) -> int:
        return a

    def gen(a: int) -> Iterator[int]:
        yield a

    async def agen(a: int) -> AsyncIterator[int]:
        yield a

    for deco in (ft.handler(tenant="acme"), ft.consumer()):
        for func in (plain, coro, gen, agen):
            wrapped = deco(func)
            assert wrapped.__name__ == func.__name__
            assert wrapped.__doc__ == func.__doc__
            assert inspect.signature(wrapped) == inspect.signature(func)
            assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(func)
            assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(func)
            assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(func)


def test_methods_bind_and_self_reaches_resolvers() -> None:
    """Decorated methods bind; resolvers receive self first."""

    class Service:
        tenant = "acme"

        @ft.handler(tenant=lambda self, x: self.tenant)
        def serve(self, x: int) -> tuple[str | None, int]:
            return ft.current().tenant, x

    assert Service().serve(5) == ("acme", 5)


def test_generator_handler_scopes_each_resumption(flowtrace_capture: Capture) -> None:
    """The context is in force inside the generator only; the span covers its whole life."""

    @ft.handler(tenant="acme")
    def rows() -> Iterator[str | None]:
        yield ft.current().tenant
        yield ft.current().tenant

    outside = []
    for row in rows():
        outside.append(ft.current().tenant)
        assert row == "acme"
    assert outside == [None, None]
    assert flowtrace_capture.span(rows.__qualname__).end_time is not None


def test_generator_handler_closed_early_ends_its_span(flowtrace_capture: Capture) -> None:
    """Closing a generator half-way ends its span without an error status."""

    @ft.handler(tenant="acme")
    def rows() -> Iterator[int]:
        yield 1
        yield 2

    gen = rows()
    assert next(gen) == 1
    gen.close()
    span = flowtrace_capture.span(rows.__qualname__)
    assert span.status.status_code is StatusCode.UNSET


def test_async_generator_handler_scopes_each_resumption() -> None:
    """Async generators: context inside each step only, never leaking to the consumer."""

    @ft.handler(tenant="acme")
    async def rows() -> AsyncIterator[str | None]:
        yield ft.current().tenant
        await asyncio.sleep(0)
        yield ft.current().tenant

    async def main() -> list[tuple[str | None, str | None]]:
        return [(row, ft.current().tenant) async for row in rows()]

    assert asyncio.run(main()) == [("acme", None), ("acme", None)]


def test_concurrent_async_handlers_never_cross() -> None:
    """500 concurrent async handler calls with random tenants each see only their own."""

    @ft.handler(tenant=lambda tenant: tenant)
    async def serve(tenant: str) -> list[str | None]:
        seen = []
        for _ in range(5):
            await asyncio.sleep(random.random() / 1000)
            seen.append(ft.current().tenant)
        return seen

    async def main() -> None:
        tenants = [f"t{random.randrange(20)}" for _ in range(500)]
        results = await asyncio.gather(*(serve(t) for t in tenants))
        for tenant, seen in zip(tenants, results, strict=True):
            assert seen == [tenant] * 5

    asyncio.run(main())


def test_threads_running_handlers_never_cross() -> None:
    """16 threads calling handlers with their own tenants never observe another's."""
    errors: list[str] = []

    @ft.handler(tenant=lambda tenant: tenant)
    def serve(tenant: str) -> None:
        for _ in range(200):
            if ft.current().tenant != tenant:
                errors.append(f"{tenant} saw {ft.current().tenant}")

    threads = [threading.Thread(target=serve, args=(f"t{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- consumer ------------------------------------------------------------------------------


def test_consumer_extracts_into_an_empty_context() -> None:
    """The consumer sees exactly the message's context, nothing of the ambient one."""

    @ft.consumer
    def on_message(message: Message) -> ft.FlowContext:
        return ft.current()

    message = Message(b"{}", headers_for(tenant="acme", user="u-1"))
    with ft.context(tenant="other", purpose="ambient"):
        seen = on_message(message)
        assert ft.current().tenant == "other"
    assert seen == ft.FlowContext(tenant="acme", user="u-1")


def test_consumer_finds_headers_in_well_known_places() -> None:
    """message.headers, pika's properties.headers, or a callable; never a dict's keys.

    Updated for issue 10 item 13: ``{"headers": ...}`` is no longer read by default.
    """

    class Properties:
        def __init__(self, headers: dict[str, Any]) -> None:
            self.headers = headers

    headers = headers_for(tenant="acme")

    @ft.consumer
    def pika_style(channel: object, method: object, properties: Properties, body: bytes) -> Any:
        return ft.current().tenant

    @ft.consumer
    def dict_style(message: dict[str, Any]) -> Any:
        return ft.current().tenant

    @ft.consumer(headers=lambda envelope: envelope["meta"])
    def custom(envelope: dict[str, Any]) -> Any:
        return ft.current().tenant

    assert pika_style(object(), object(), Properties(headers), b"x") == "acme"
    with pytest.raises(TypeError, match="mapping keys are never read"):
        dict_style({"headers": headers, "body": b"x"})
    assert custom({"meta": headers}) == "acme"


def test_consumer_without_headers_argument_is_a_coding_error() -> None:
    """If no argument has headers, the decorator says how to point it at them."""

    @ft.consumer
    def on_message(body: bytes) -> None:
        raise AssertionError("must not run")

    with pytest.raises(TypeError, match="headers=callable"):
        on_message(b"x")


def test_tenantless_message_is_refused_and_reported(flowtrace_capture: Capture) -> None:
    """No tenant: MissingTenantError, message_refused event, body never runs."""
    ran = []

    @ft.consumer("billing.consume")
    def on_message(message: Message) -> None:
        ran.append(message)

    for headers in (None, {}, headers_for(user="u-1")):
        with pytest.raises(ft.MissingTenantError, match=r"billing\.consume"):
            on_message(Message(b"x", headers))
    assert ran == []
    events = flowtrace_capture.events(ft.EventKind.MESSAGE_REFUSED)
    assert [e.attributes["reason"] for e in events] == ["missing_tenant"] * 3
    assert all(e.attributes["dead_lettered"] is False for e in events)


def test_tenantless_message_goes_intact_to_on_missing(flowtrace_capture: Capture) -> None:
    """With on_missing, the very same arguments reach the callback and its result is returned."""
    dead_letters: list[tuple[Any, ...]] = []

    def dead_letter(*args: Any) -> str:
        dead_letters.append(args)
        return "dead-lettered"

    @ft.consumer(on_missing=dead_letter)
    def on_message(message: Message, attempt: int) -> str:
        raise AssertionError("must not run")

    message = Message(b"\x00payload\xff", {"x-other": "1"})
    assert on_message(message, 3) == "dead-lettered"
    assert dead_letters == [(message, 3)]
    assert dead_letters[0][0].body == b"\x00payload\xff"
    (event,) = flowtrace_capture.events(ft.EventKind.MESSAGE_REFUSED)
    assert event.attributes["dead_lettered"] is True


def test_malformed_headers_are_refused_or_dead_lettered() -> None:
    """Malformed headers raise ContextPropagationError, or are dead-lettered intact."""
    bad = {"baggage": "flowtrace.tenant=acme,flowtrace.tenant=globex"}  # ambiguous: ours
    dead: list[Message] = []

    @ft.consumer
    def strict(message: Message) -> None:
        raise AssertionError("must not run")

    @ft.consumer(on_missing=dead.append)
    def lenient(message: Message) -> None:
        raise AssertionError("must not run")

    with pytest.raises(ft.ContextPropagationError):
        strict(Message(b"x", bad))
    message = Message(b"x", bad)
    lenient(message)
    assert dead == [message]


def test_tenant_outside_allow_list_is_refused(flowtrace_capture: Capture) -> None:
    """allowed_tenants: other tenants raise TenantNotAllowedError and are reported."""

    @ft.consumer(allowed_tenants={"acme"})
    def on_message(message: Message) -> str | None:
        return ft.current().tenant

    assert on_message(Message(b"x", headers_for(tenant="acme"))) == "acme"
    with pytest.raises(ft.TenantNotAllowedError, match="globex"):
        on_message(Message(b"x", headers_for(tenant="globex")))
    (event,) = flowtrace_capture.events(ft.EventKind.MESSAGE_REFUSED)
    assert event.attributes["reason"] == "tenant_not_allowed"
    assert event.context.tenant == "globex"


def test_consumer_span_links_to_producer(flowtrace_capture: Capture) -> None:
    """The CONSUMER span starts a new trace with a link to the producer's span."""
    sent: list[Message] = []

    @ft.handler(tenant="acme", user="u-1")
    def publish() -> None:
        sent.append(Message(b"x", inject({}, identity=True)))

    @ft.consumer
    def on_message(message: Message) -> None:
        return None

    publish()
    on_message(sent[0])
    producer = flowtrace_capture.span(publish.__qualname__)
    consumer_span = flowtrace_capture.span(on_message.__qualname__)
    assert consumer_span.kind is SpanKind.CONSUMER
    assert consumer_span.parent is None
    (link,) = consumer_span.links
    assert link.context.span_id == producer.context.span_id
    assert link.context.trace_id == producer.context.trace_id
    assert flowtrace_capture.flow_attributes(consumer_span) == {"tenant": "acme", "user": "u-1"}


def test_async_and_generator_consumers() -> None:
    """Async and generator consumers see the message context; async on_missing is awaited."""
    dead: list[Message] = []

    async def dead_letter(message: Message) -> None:
        await asyncio.sleep(0)
        dead.append(message)

    @ft.consumer(on_missing=dead_letter)
    async def on_message(message: Message) -> str | None:
        await asyncio.sleep(0)
        return ft.current().tenant

    @ft.consumer
    def split(message: Message) -> Iterator[str | None]:
        yield ft.current().tenant

    assert asyncio.run(on_message(Message(b"x", headers_for(tenant="acme")))) == "acme"
    orphan = Message(b"y")
    assert asyncio.run(on_message(orphan)) is None
    assert dead == [orphan]
    assert list(split(Message(b"x", headers_for(tenant="acme")))) == ["acme"]


# --- fast paths stay exact -----------------------------------------------------------------


@pytest.mark.parametrize(
    "carrier",
    [
        {"baggage": "flowtrace.tenant=acme,flowtrace.user=u-1"},
        {"baggage": "flowtrace.tenant=acme", "Baggage": "flowtrace.user=u-2"},
        {"baggage": b"flowtrace.tenant=acme", "traceparent": "x"},
        {"BAGGAGE": "flowtrace.tenant=acme", "x-other": "1"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {},
    ],
)
def test_consumer_parse_matches_extract(carrier: dict[str, Any]) -> None:
    """The consumer's memoized parse gives exactly what flowtrace.extract gives, twice."""
    from flowtrace.propagation import carrier_context as _extract

    expected = ft.extract(carrier)
    assert _extract(carrier) == expected
    assert _extract(carrier) == expected


def test_consumer_parse_never_memoizes_errors() -> None:
    """A malformed header raises every time, never served from the memo."""
    from flowtrace.propagation import carrier_context as _extract

    for _ in range(2):
        with pytest.raises(ft.ContextPropagationError):
            _extract({"baggage": "flowtrace.tenant=a,flowtrace.tenant=b"})


def test_memoized_handler_still_reports_every_tenant_switch(flowtrace_capture: Capture) -> None:
    """Memoization never skips a reported cross-tenant switch."""

    @ft.handler(tenant=lambda t: t)
    def serve(tenant: str) -> str | None:
        return ft.current().tenant

    with ft.context(tenant="acme"), ft.cross_tenant(reason="support"):
        assert serve("globex") == "globex"
        assert serve("globex") == "globex"
    assert len(flowtrace_capture.events(ft.EventKind.TENANT_SWITCH)) == 2


def test_memoized_handler_follows_the_outer_context() -> None:
    """The same resolved values under different outer contexts give different contexts."""

    @ft.handler(tenant=lambda t: t)
    def serve(tenant: str) -> ft.FlowContext:
        return ft.current()

    assert serve("acme") == ft.FlowContext(tenant="acme")
    with ft.context(purpose="billing"):
        assert serve("acme") == ft.FlowContext(tenant="acme", purpose="billing")
    with ft.context(tenant="other"), pytest.raises(ft.TenantSwitchError):
        serve("acme")
    assert serve("acme") == ft.FlowContext(tenant="acme")


def test_unhashable_resolved_value_is_a_clear_error() -> None:
    """A resolver returning a non-str (even unhashable) value raises InvalidContextValueError."""

    @ft.handler(tenant=lambda: ["acme"])
    def serve() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ft.InvalidContextValueError, match="tenant"):
        serve()


def test_many_resolvers_take_the_general_path() -> None:
    """Three or more resolvers resolve correctly (and repeatedly) too."""

    @ft.handler(tenant=lambda r: r["t"], user=lambda r: r["u"], purpose=lambda r: r["p"])
    def serve(request: dict[str, str]) -> ft.FlowContext:
        return ft.current()

    for _ in range(2):
        assert serve({"t": "acme", "u": "u-1", "p": "care"}) == ft.FlowContext(
            tenant="acme", user="u-1", purpose="care"
        )


def test_consumer_shortcut_agrees_with_full_path() -> None:
    """Repeated messages (memoized parse) give the same results as the first, refusals too."""

    @ft.consumer(allowed_tenants={"acme"})
    def on_message(message: Any) -> str | None:
        return ft.current().user

    acme = headers_for(tenant="acme", user="u-1")
    other = headers_for(tenant="globex")
    for _ in range(3):
        assert on_message(Message(b"x", dict(acme))) == "u-1"
        with pytest.raises(TypeError):  # a dict's keys are never read (issue 10 item 13)
            on_message({"headers": dict(acme)})
        with pytest.raises(ft.TenantNotAllowedError):
            on_message(Message(b"x", dict(other)))
        with pytest.raises(ft.MissingTenantError):
            on_message(Message(b"x", {"baggage": "flowtrace.user=u-1"}))
        with pytest.raises(TypeError):
            on_message({"body": b"no headers"})


def test_consumer_shortcut_combines_other_header_spellings() -> None:
    """A second spelling of the baggage header is never skipped by the memoized shortcut."""

    @ft.consumer
    def on_message(message: Message) -> ft.FlowContext:
        return ft.current()

    plain = {"baggage": "flowtrace.tenant=acme"}
    mixed = {"baggage": "flowtrace.tenant=acme", "Baggage": "flowtrace.user=u-2"}
    assert on_message(Message(b"x", plain)) == ft.FlowContext(tenant="acme")
    for _ in range(2):
        assert on_message(Message(b"x", mixed)) == ft.extract(mixed)
        assert on_message(Message(b"x", mixed)).user == "u-2"


# --- generators and coroutines: errors, throw, close ------------------------------------


def test_generator_errors_are_recorded_and_throw_is_forwarded(
    flowtrace_capture: Capture,
) -> None:
    """gen.throw() reaches the body in its context; an escaping error marks the span ERROR."""
    seen: list[tuple[str, str | None]] = []

    @ft.handler("rows", tenant="acme")
    def rows() -> Iterator[int]:
        try:
            yield 1
        except KeyError:
            seen.append(("caught", ft.current().tenant))
        yield 2
        raise RuntimeError("broken row")

    gen = rows()
    assert next(gen) == 1
    assert gen.throw(KeyError("x")) == 2
    with pytest.raises(RuntimeError, match="broken row"):
        next(gen)
    assert seen == [("caught", "acme")]
    span = flowtrace_capture.span("rows")
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_generator_send_and_return_value_pass_through() -> None:
    """send() values reach the body and the return value reaches `yield from`."""

    @ft.handler(tenant="acme")
    def echo() -> Any:
        received = yield "ready"
        return f"{received}@{ft.current().tenant}"

    def outer() -> Any:
        return (yield from echo())

    gen = outer()
    assert next(gen) == "ready"
    with pytest.raises(StopIteration) as stop:
        gen.send("hello")
    assert stop.value.value == "hello@acme"


def test_async_handler_error_is_recorded(flowtrace_capture: Capture) -> None:
    """An exception escaping an async handler is recorded on its span and re-raised."""

    @ft.handler("pay", tenant="acme")
    async def pay() -> None:
        await asyncio.sleep(0)
        raise ValueError("declined")

    with pytest.raises(ValueError, match="declined"):
        asyncio.run(pay())
    span = flowtrace_capture.span("pay")
    assert span.status.status_code is StatusCode.ERROR
    assert flowtrace_capture.flow_attributes(span) == {"tenant": "acme"}


def test_async_generator_error_and_close(flowtrace_capture: Capture) -> None:
    """Async generators: errors mark the span ERROR; aclose() ends it cleanly."""

    @ft.handler("stream", tenant="acme")
    async def stream(fail: bool) -> AsyncIterator[int]:
        yield 1
        if fail:
            raise RuntimeError("stream broke")
        yield 2

    async def main() -> None:
        gen = stream(False)
        assert await gen.__anext__() == 1
        await gen.aclose()
        with pytest.raises(RuntimeError, match="stream broke"):
            async for _ in stream(True):
                pass

    asyncio.run(main())
    closed, failed = flowtrace_capture.spans("stream")
    assert closed.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR


def test_generator_consumers_dead_letter_and_refuse(flowtrace_capture: Capture) -> None:
    """Generator and async-generator consumers refuse or dead-letter like plain ones."""
    dead: list[Message] = []

    @ft.consumer(on_missing=dead.append)
    def split(message: Message) -> Iterator[bytes]:
        yield message.body

    @ft.consumer
    async def asplit(message: Message) -> AsyncIterator[bytes]:
        yield message.body

    orphan = Message(b"orphan")
    assert list(split(orphan)) == []
    assert dead == [orphan]

    async def drain() -> list[bytes]:
        return [chunk async for chunk in asplit(Message(b"x"))]

    with pytest.raises(ft.MissingTenantError):
        asyncio.run(drain())
    reasons = [
        (e.attributes["reason"], e.attributes["dead_lettered"])
        for e in flowtrace_capture.events(ft.EventKind.MESSAGE_REFUSED)
    ]
    assert reasons == [("missing_tenant", True), ("missing_tenant", False)]


def test_consumer_reads_multi_value_header_objects() -> None:
    """Header objects that are not dicts (here an email.message.Message) work as carriers."""
    from email.message import Message as EmailMessage

    headers = EmailMessage()
    for key, value in headers_for(tenant="acme", user="u-1").items():
        headers[key] = value

    @ft.consumer(headers=lambda envelope: envelope.meta)
    def on_message(envelope: Any) -> str | None:
        return ft.current().user

    class Envelope:
        meta = headers

    assert on_message(Envelope()) == "u-1"


# --- memoization is invisible: property test -------------------------------------------

_values = st.sampled_from(["acme", "globex", "initech", None])


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(st.tuples(_values, _values, _values), min_size=1, max_size=12))
def test_memoized_handler_equals_direct_derivation(
    calls: list[tuple[str | None, str | None, str | None]],
) -> None:
    """Whatever the call sequence, a handler's context equals a fresh derivation (or error)."""

    @ft.handler(tenant=lambda t, u: t, user=lambda t, u: u)
    def serve(tenant: str | None, user: str | None) -> ft.FlowContext:
        return ft.current()

    for outer, tenant, user in calls:
        scope = ft.context(tenant=outer) if outer is not None else ft.context()
        with scope:
            expected: ft.FlowContext | type[Exception]
            try:
                with ft.context(tenant=tenant, user=user) as direct:
                    expected = direct
            except ft.FlowtraceError as exc:
                expected = type(exc)
            if tenant is None:
                expected = ft.MissingTenantError
            try:
                got: ft.FlowContext | type[Exception] = serve(tenant, user)
            except ft.FlowtraceError as exc:
                got = type(exc)
            assert got == expected


# --- a handler behind a real HTTP server -------------------------------------------------


def test_handler_behind_real_http_server(flowtrace_capture: Capture) -> None:
    """Over loopback HTTP: tenant from the verified token; forged baggage tenant gets 403."""
    import json
    import urllib.error
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    tokens = {"token-acme": "acme"}  # what a verified credential maps to

    class Server(BaseHTTPRequestHandler):
        @ft.handler(
            "GET /whoami",
            tenant=lambda self: tokens.get(self.headers.get("Authorization", "")),
            carrier=lambda self: self.headers,
        )
        def answer(self) -> None:
            body = json.dumps(ft.current().to_dict()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            try:
                self.answer()
            except (ft.TenantMismatchError, ft.MissingTenantError) as exc:
                self.send_error(403, type(exc).__name__)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/whoami"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(token: str, **fields: str) -> tuple[int, str]:
        with ft.context(**fields):
            headers = ft.inject({"Authorization": token})
        try:
            with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.reason

    try:
        status, body = call("token-acme", tenant="acme", correlation_id="req-1")
        assert (status, json.loads(body)) == (200, {"tenant": "acme", "correlation_id": "req-1"})
        assert call("token-acme", tenant="globex") == (403, "TenantMismatchError")
        assert call("stolen", tenant="acme") == (403, "MissingTenantError")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    (mismatch,) = flowtrace_capture.events(ft.EventKind.TENANT_MISMATCH)
    assert mismatch.attributes["carrier_tenant"] == "globex"


# --- issue 10 item 13: a message body never chooses the tenant ------------------------------


class KombuMessage:
    """The shape of ``kombu.message.Message``: broker headers on an attribute."""

    def __init__(self, headers: dict[str, Any]) -> None:
        self.headers = headers

    def ack(self) -> None:
        return None


ACME = {"baggage": "flowtrace.tenant=acme"}
FORGED_BODY = {"headers": {"baggage": "flowtrace.tenant=evil"}, "invoice": 1}


def test_item13_kombu_body_dict_never_chooses_the_tenant() -> None:
    """kombu's process(body, message): the tenant comes from message.headers, not the body.

    On main (074b03e) the body dict's "headers" key was read first: tenant "evil".
    """

    @ft.consumer
    def process(body: dict[str, Any], message: KombuMessage) -> str | None:
        return ft.current().tenant

    assert process(FORGED_BODY, KombuMessage(dict(ACME))) == "acme"
    with pytest.raises(ft.MissingTenantError):  # no tenant on the message: refused
        process(FORGED_BODY, KombuMessage({}))


def test_item13_a_body_dict_alone_is_never_read_by_default() -> None:
    """A lone dict argument is a body, not headers: TypeError saying how to opt in."""

    @ft.consumer
    def process(body: dict[str, Any]) -> None:
        raise AssertionError("must not run")

    with pytest.raises(TypeError, match="mapping keys are never read"):
        process(FORGED_BODY)


def test_item13_mappings_exposing_keys_as_attributes_are_skipped() -> None:
    """A body mapping whose keys read as attributes (Box, addict...) is never a carrier."""

    class AttrDict(dict[str, Any]):
        def __getattr__(self, name: str) -> Any:
            try:
                return self[name]
            except KeyError:
                raise AttributeError(name) from None

    @ft.consumer
    def process(body: AttrDict, message: KombuMessage) -> str | None:
        return ft.current().tenant

    body = AttrDict(FORGED_BODY)
    assert process(body, KombuMessage(dict(ACME))) == "acme"


def test_item13_two_arguments_with_headers_require_headers_argument() -> None:
    """Ambiguous shapes raise ConfigError at the first call, naming the way out."""

    @dataclass
    class Decoded:
        headers: dict[str, Any]

    @ft.consumer
    def process(body: Decoded, message: KombuMessage) -> None:
        raise AssertionError("must not run")

    with pytest.raises(ft.ConfigError, match=r"arguments 0 and 1 .*headers='<parameter>.headers'"):
        process(Decoded(FORGED_BODY["headers"]), KombuMessage(dict(ACME)))


def test_item13_explicit_parameter_path_for_body_message_shapes() -> None:
    """headers="message.headers" reads that parameter only (positional or keyword)."""

    @dataclass
    class Decoded:
        headers: dict[str, Any]

    @ft.consumer(headers="message.headers")
    def process(body: Decoded, message: KombuMessage) -> str | None:
        return ft.current().tenant

    forged = Decoded({"baggage": "flowtrace.tenant=evil"})
    good = KombuMessage(dict(ACME))
    assert process(forged, good) == "acme"
    assert process(forged, message=good) == "acme"
    with pytest.raises(TypeError, match="has no 'headers' attribute"):
        process(forged, FORGED_BODY)  # type: ignore[arg-type]
    with pytest.raises(ft.ConfigError, match="one of the function's parameters"):

        @ft.consumer(headers="msg.headers")
        def wrong(body: Any, message: Any) -> None: ...
