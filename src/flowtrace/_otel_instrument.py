"""Run a decorated callable inside a flow context and (when tracing is on) an OTel span.

The decorators describe *what* to do per call with a :class:`Plan`; this module does the
*how* for plain, async, generator and async-generator functions. With tracing not
configured (OTel's proxy or no-op provider) no span work happens at all: the call costs a
context-variable set/reset on top of the plan.

Generators: the flow context and the span are entered around each resumption only, and
the span ends when the generator finishes, fails or is closed.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
)
from opentelemetry.util.types import AttributeValue

from . import _config
from ._otel_attributes import _attributes_of
from ._tracing import get_tracer
from ._wrapping import _drive_generator
from .context import FlowContext, _reset_current, _set_current, _var
from .propagation import enter_received, leave_received

__all__ = ["Plan", "SpanSetup", "active_tracer", "instrument"]

F = TypeVar("F", bound=Callable[..., Any])

_NOOP_PROVIDERS = (ProxyTracerProvider, NoOpTracerProvider)
_get_global_provider = trace.get_tracer_provider
# OTel loads a global provider named by this variable lazily; only then is the slow
# lookup needed to know whether tracing is on.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


# Read OTel's set-once global directly when this OTel version has it (saves a call).
_DIRECT_GLOBAL_CHECK = hasattr(trace, "_TRACER_PROVIDER") and not _PROVIDER_FROM_ENV

if _DIRECT_GLOBAL_CHECK:

    def _no_global_provider() -> bool:
        """True when OTel's global provider was never set (reads OTel's set-once global)."""
        return trace._TRACER_PROVIDER is None

else:  # pragma: no cover - other OTel layouts, or a provider named in the environment

    def _no_global_provider() -> bool:
        return isinstance(_get_global_provider(), ProxyTracerProvider)


def active_tracer() -> Tracer | None:
    """The tracer in force, or ``None`` when tracing is not configured (cheap check)."""
    provider = _config._settings.tracer_provider
    if provider is None:
        if _no_global_provider():
            return None
        provider = _get_global_provider()
    if isinstance(provider, _NOOP_PROVIDERS):
        return None
    return get_tracer()


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
    flow = _attributes_of(ctx)
    attributes = {**opts.attributes, **flow} if opts.attributes else flow
    return tracer.start_span(
        opts.name, context=parent, kind=opts.kind, attributes=attributes, links=links
    )


def _fail(span: Span, exc: BaseException) -> None:
    if isinstance(exc, Exception):
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _split(result: FlowContext | Plan) -> tuple[FlowContext, Plan | None]:
    if type(result) is FlowContext:
        return result, None
    plan = cast(Plan, result)
    return plan.ctx, plan


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
    if inspect.isasyncgenfunction(func):
        return cast(F, _wrap_asyncgen(func, prepare, opts))
    if inspect.isgeneratorfunction(func):
        return cast(F, _wrap_generator(func, prepare, opts))
    if inspect.iscoroutinefunction(func):
        return cast(F, _wrap_async(func, prepare, opts))
    return cast(F, _wrap_sync(func, prepare, opts))


def _wrap_sync(func: Callable[..., Any], prepare: PlanFactory, opts: _SpanOptions) -> Any:
    settings_holder = _config
    otel_trace = trace
    no_global_provider = _no_global_provider
    direct = _DIRECT_GLOBAL_CHECK
    # C-level ContextVar methods: the fast path pushes the node (ctx, parent, None) itself.
    node_get = _var.get
    node_set = _var.set
    reset_current = _var.reset

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        prepared = prepare(args, kwargs)
        if (
            type(prepared) is FlowContext
            and settings_holder._settings.tracer_provider is None
            and (otel_trace._TRACER_PROVIDER is None if direct else no_global_provider())
        ):
            # Fast path: tracing not configured, nothing but the context to enter.
            fast = node_set((prepared, node_get(), None))
            try:
                return func(*args, **kwargs)
            finally:
                reset_current(fast)
        ctx, plan = _split(prepared)
        tracer = active_tracer()
        token = _set_current(ctx)
        received = enter_received(plan.received) if plan is not None else None
        try:
            if tracer is None:
                if plan is None:
                    return func(*args, **kwargs)
                if plan.check is not None:
                    plan.check()
                return (plan.substitute or func)(*args, **kwargs)
            span = _start_span(tracer, opts, ctx, args, kwargs)
            with trace.use_span(span, end_on_exit=True, record_exception=False,
                                set_status_on_exception=False):
                try:
                    if plan is not None:
                        if plan.check is not None:
                            plan.check()
                        return (plan.substitute or func)(*args, **kwargs)
                    return func(*args, **kwargs)
                except BaseException as exc:
                    _fail(span, exc)
                    raise
        finally:
            leave_received(received)
            _reset_current(token)

    return wrapper


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _wrap_async(func: Callable[..., Any], prepare: PlanFactory, opts: _SpanOptions) -> Any:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        prepared = prepare(args, kwargs)
        if type(prepared) is FlowContext and _config._settings.tracer_provider is None and (
            trace._TRACER_PROVIDER is None if _DIRECT_GLOBAL_CHECK else _no_global_provider()
        ):
            fast = _var.set((prepared, _var.get(), None))
            try:
                return await func(*args, **kwargs)
            finally:
                _var.reset(fast)
        ctx, plan = _split(prepared)
        tracer = active_tracer()
        token = _set_current(ctx)
        received = enter_received(plan.received) if plan is not None else None
        try:
            span = _start_span(tracer, opts, ctx, args, kwargs) if tracer is not None else None
            with (
                trace.use_span(span, end_on_exit=True, record_exception=False,
                               set_status_on_exception=False)
                if span is not None
                else _NULL
            ):
                try:
                    if plan is not None:
                        if plan.check is not None:
                            plan.check()
                        if plan.substitute is not None:
                            return await _maybe_await(plan.substitute(*args, **kwargs))
                    return await func(*args, **kwargs)
                except BaseException as exc:
                    if span is not None:
                        _fail(span, exc)
                    raise
        finally:
            leave_received(received)
            _reset_current(token)

    return wrapper


class _Null:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL = _Null()


class _Step:
    """Enter the flow context and the span around one generator resumption."""

    __slots__ = ("ctx", "otel_ctx", "received", "tokens")

    def __init__(
        self, ctx: FlowContext, span: Span | None, received: tuple[str, ...] = ()
    ) -> None:
        self.ctx = ctx
        self.otel_ctx = trace.set_span_in_context(span) if span is not None else None
        self.received = received
        self.tokens: list[Any] = []

    def __enter__(self) -> None:
        self.tokens.append(
            (
                _set_current(self.ctx),
                otel_context.attach(self.otel_ctx) if self.otel_ctx is not None else None,
                enter_received(self.received),
            )
        )

    def __exit__(self, *exc: object) -> None:
        token, otel_token, received = self.tokens.pop()
        leave_received(received)
        if otel_token is not None:
            otel_context.detach(otel_token)
        _reset_current(token)


def _begin(
    prepare: PlanFactory, opts: _SpanOptions, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Plan | None, Span | None, _Step]:
    ctx, plan = _split(prepare(args, kwargs))
    tracer = active_tracer()
    span = _start_span(tracer, opts, ctx, args, kwargs) if tracer is not None else None
    return plan, span, _Step(ctx, span, plan.received if plan is not None else ())


def _end(span: Span | None, exc: BaseException | None) -> None:
    if span is not None:
        if exc is not None:
            _fail(span, exc)
        span.end()


def _wrap_generator(func: Callable[..., Any], prepare: PlanFactory, opts: _SpanOptions) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        plan, span, step = _begin(prepare, opts, args, kwargs)
        try:
            with step:
                if plan is not None and plan.check is not None:
                    plan.check()
                if plan is not None and plan.substitute is not None:
                    result = plan.substitute(*args, **kwargs)
                    _end(span, None)
                    return result
                gen = func(*args, **kwargs)
        except BaseException as exc:
            _end(span, exc)
            raise
        # The shared driver enters `step` around each resumption and forwards send/throw/
        # close; here only the span's end is added.
        try:
            result = yield from _drive_generator(gen, lambda: step)
        except GeneratorExit:
            _end(span, None)
            raise
        except BaseException as exc:
            _end(span, exc)
            raise
        _end(span, None)
        return result

    return wrapper


def _wrap_asyncgen(func: Callable[..., Any], prepare: PlanFactory, opts: _SpanOptions) -> Any:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        plan, span, step = _begin(prepare, opts, args, kwargs)
        try:
            with step:
                if plan is not None and plan.check is not None:
                    plan.check()
                if plan is not None and plan.substitute is not None:
                    await _maybe_await(plan.substitute(*args, **kwargs))
                    _end(span, None)
                    return
                agen = func(*args, **kwargs)
        except BaseException as exc:
            _end(span, exc)
            raise
        value: Any = None
        throw: BaseException | None = None
        while True:
            try:
                with step:
                    item = await (agen.asend(value) if throw is None else agen.athrow(throw))
            except StopAsyncIteration:
                _end(span, None)
                return
            except BaseException as exc:
                _end(span, exc)
                raise
            throw = None
            try:
                value = yield item
            except GeneratorExit:
                try:
                    with step:
                        await agen.aclose()
                finally:
                    _end(span, None)
                raise
            except BaseException as exc:  # forwarded into the wrapped generator
                throw = exc

    return wrapper
