"""Executors that carry the flow context to where the work runs, and nowhere else.

A bare :class:`~concurrent.futures.ThreadPoolExecutor` runs every task in the pool
thread's *own* context: the submitter's tenant is lost, and a task that sets a context
variable without resetting it (a scope entered and never exited, a library that calls
``ContextVar.set``) leaves that tenant on the thread for the next, unrelated task.

:class:`ContextThreadPoolExecutor` runs each task in a fresh copy of the *submitter's*
:mod:`contextvars` context, so the flow context and the OTel context follow the work and
whatever a task changes dies with its copy. ``loop.run_in_executor(executor, fn)`` goes
through :meth:`~ContextThreadPoolExecutor.submit`, so it works too. :func:`bind` does the
same for a callback handed to code you do not control.

:class:`ContextProcessPoolExecutor` cannot share memory with its workers: it serializes
the submitter's context into a W3C carrier (:func:`flowtrace.inject`) and the worker
enters exactly that context (:func:`flowtrace.extract`), in a fresh context per task.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import context as otel_context_api

from ..flowcontext import FlowContext, attach, detach
from ._propagate import extract, inject, otel_context

__all__ = ["ContextProcessPoolExecutor", "ContextThreadPoolExecutor", "bind"]

P = ParamSpec("P")
R = TypeVar("R")


def bind(fn: Callable[P, R]) -> Callable[P, R]:
    """Return ``fn`` bound to a snapshot of the current context.

    Every call of the result runs in a fresh copy of that snapshot (never in the caller's
    context, never in a copy shared with a concurrent call), so the flow context seen at
    bind time is the one the callback sees, on whatever thread calls it, and what the
    callback changes does not outlive the call. For a coroutine function the returned
    coroutine function runs the body in its own task, in a copy of the snapshot.
    (Generator functions are not supported: their bodies run wherever they are iterated.)

    Example::

        import threading

        import flowtrace as ft

        seen = []
        with ft.context(tenant="acme"):
            callback = ft.bind(lambda: seen.append(ft.current().tenant))
        thread = threading.Thread(target=callback)
        thread.start()
        thread.join()
        assert seen == ["acme"]
    """
    snapshot = contextvars.copy_context()
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def bound_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            # The coroutine's body runs in its own task, inside a copy of the snapshot;
            # cancelling the caller cancels that task too.
            loop = asyncio.get_running_loop()
            return await loop.create_task(fn(*args, **kwargs), context=snapshot.copy())

        return cast(Callable[P, R], bound_async)

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return snapshot.copy().run(fn, *args, **kwargs)

    return bound


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in a copy of the submitter's context.

    Drop-in: same constructor and methods. ``submit`` (and so ``map`` and
    ``loop.run_in_executor``) captures :func:`contextvars.copy_context` in the submitting
    thread; the task runs inside that copy. A pool thread's own context (possibly stale,
    e.g. set by an ``initializer``) is never visible to tasks.

    Example::

        import flowtrace as ft

        with ft.ContextThreadPoolExecutor(max_workers=2) as pool:
            with ft.context(tenant="acme"):
                future = pool.submit(ft.require_tenant)
            assert future.result() == "acme"
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` to run in a copy of the caller's context."""
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


def _run_in_carrier(
    carrier: dict[str, str], fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    """Worker side: run ``fn`` in a fresh context holding exactly the carrier's context."""
    return contextvars.Context().run(_enter_and_call, carrier, fn, args, kwargs)


def _enter_and_call(
    carrier: dict[str, str], fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    flow: FlowContext = extract(carrier)
    otel_token = otel_context_api.attach(otel_context(carrier))
    token = attach(flow)
    try:
        return fn(*args, **kwargs)
    finally:
        detach(token)
        otel_context_api.detach(otel_token)


class ContextProcessPoolExecutor(ProcessPoolExecutor):
    """A ProcessPoolExecutor whose tasks run in the submitter's flow context.

    ``submit`` serializes the current flow context and trace context into a W3C carrier
    (:func:`flowtrace.inject`); the worker process validates it (:func:`flowtrace.extract`)
    and runs the task in a fresh :mod:`contextvars` context holding exactly that flow
    context, with the submitter's span as remote parent. ``fn`` and its arguments must
    be picklable, as with any process pool. A context too large for W3C baggage raises
    :class:`~flowtrace.errors.ContextPropagationError` at submit time.

    Example::

        import flowtrace as ft

        with ft.ContextProcessPoolExecutor(max_workers=1) as pool:
            with ft.context(tenant="acme", purpose="billing"):
                future = pool.submit(ft.require_tenant)   # runs in the worker in this context
            assert future.result() == "acme"
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` in a worker, inside the caller's flow context."""
        carrier: dict[str, str] = inject({}, identity=True)  # our own worker: same trust domain
        return super().submit(_run_in_carrier, carrier, fn, args, kwargs)
