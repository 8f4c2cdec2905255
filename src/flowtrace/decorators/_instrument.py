"""Run a decorated callable inside a flow context and (when tracing is on) an OTel span.

The decorators describe *what* to do per call with a :class:`Plan`; the *how* for plain,
async, generator and async-generator functions is the one wrapper family in
:mod:`flowtrace._wrapping`. With tracing not configured (no provider in the settings and
OTel's global one still the default proxy) no span work happens at all: the call costs a
context-variable set/reset on top of the plan.

Generators: the flow context and the span are entered around each resumption only, and
the span ends when the generator finishes, fails or is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
)
from opentelemetry.util.types import AttributeValue

from .. import _settings, _tracing
from .._tracing import get_tracer
from .._wrapping import Step, wrap
from ..flowcontext import FlowContext, attach, detach
from ..otel import flow_attributes
from ..propagation import enter_received, leave_received

__all__ = ["Plan", "SpanSetup", "active_tracer", "instrument"]

F = TypeVar("F", bound=Callable[..., Any])

def active_tracer() -> Tracer | None:
    """The tracer in force, or ``None`` when tracing is not configured."""
    return None if _tracing.active_provider() is None else get_tracer()


class Plan:
    """What one call needs beyond its flow context: a check and a substitute.

    ``check`` runs inside the context and span before the body and may raise;
    ``substitute`` (e.g. a dead-letter callback) is called with the same arguments
    instead of the body. ``received``: the carrier's foreign baggage members, which
    ``inject`` forwards while the body runs.
    """

    __slots__ = ("check", "ctx", "received", "substitute")

    def __init__(
        self,
        ctx: FlowContext,
        *,
        check: Callable[[], None] | None = None,
        substitute: Callable[..., Any] | None = None,
        received: tuple[str, ...] = (),
    ) -> None:
        self.ctx = ctx
        self.check = check
        self.substitute = substitute
        self.received = received


SpanSetup = Callable[
    [tuple[Any, ...], dict[str, Any]], tuple[otel_context.Context | None, Sequence[Link]]
]
"""Computes ``(parent context, links)`` from the call's arguments, only when tracing."""

PlanFactory = Callable[[tuple[Any, ...], dict[str, Any]], "FlowContext | Plan"]


class _SpanOptions:
    __slots__ = ("attributes", "kind", "name", "setup")

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        attributes: dict[str, AttributeValue] | None,
        setup: SpanSetup | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.attributes = attributes
        self.setup = setup


def _start_span(
    tracer: Tracer,
    opts: _SpanOptions,
    ctx: FlowContext,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Span:
    parent: otel_context.Context | None = None
    links: Sequence[Link] = ()
    if opts.setup is not None:
        parent, links = opts.setup(args, kwargs)
    # The span carries its flow context even on providers without FlowContextSpanProcessor.
    flow = flow_attributes(ctx)
    attributes = {**opts.attributes, **flow} if opts.attributes else flow
    return tracer.start_span(
        opts.name, context=parent, kind=opts.kind, attributes=attributes, links=links
    )


class _Call(Step):
    """One decorated call: the flow context (and span) around the body or each resumption."""

    __slots__ = ("ctx", "otel_ctx", "plan", "received", "span", "tokens")

    def __init__(self, ctx: FlowContext, plan: Plan | None, span: Span | None) -> None:
        self.ctx = ctx
        self.plan = plan
        self.received = plan.received if plan is not None else ()
        self.span = span
        self.otel_ctx = trace.set_span_in_context(span) if span is not None else None
        self.tokens: list[Any] = []

    def enter(self) -> None:
        otel_ctx = self.otel_ctx
        self.tokens.append(
            (
                attach(self.ctx),
                otel_context.attach(otel_ctx) if otel_ctx is not None else None,
                enter_received(self.received) if self.received else None,
            )
        )

    def exit(self) -> None:
        token, otel_token, received = self.tokens.pop()
        if received is not None:
            leave_received(received)
        if otel_token is not None:
            otel_context.detach(otel_token)
        detach(token)

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan = self.plan
        if plan is None:
            return func(*args, **kwargs)
        if plan.check is not None:
            plan.check()
        return (plan.substitute or func)(*args, **kwargs)

    def result(self, value: Any) -> Any:
        if self.span is not None:
            self.span.end()
        return value

    def error(self, exc: BaseException) -> None:
        span = self.span
        if span is not None:
            if isinstance(exc, Exception):
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.end()

    def finish(self) -> None:
        if self.span is not None:
            self.span.end()


def instrument(
    func: F,
    prepare: PlanFactory,
    *,
    name: str,
    kind: SpanKind,
    attributes: dict[str, AttributeValue] | None = None,
    span_setup: SpanSetup | None = None,
) -> F:
    """Wrap ``func`` so each call runs under ``prepare(args, kwargs)`` and a span ``name``."""
    opts = _SpanOptions(name, kind, attributes, span_setup)
    read_settings = _settings.settings
    global_seen = _tracing._global
    global_unset = _tracing._seen_unset
    global_provider = _tracing.global_provider

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any], resumable: bool) -> Any:
        prepared = prepare(args, kwargs)
        if (
            type(prepared) is FlowContext
            and not resumable
            and read_settings().tracer_provider is None
            and global_seen[0] is None
            and (global_unset[0] or global_provider() is None)
        ):
            return attach(prepared)  # fast lane: tracing not configured, only the context
        if type(prepared) is FlowContext:
            ctx, plan = prepared, None
        else:
            plan = cast(Plan, prepared)
            ctx = plan.ctx
        tracer = active_tracer()
        span = _start_span(tracer, opts, ctx, args, kwargs) if tracer is not None else None
        return _Call(ctx, plan, span)

    return wrap(func, begin, detach)

