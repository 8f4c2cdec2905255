"""``@flowtrace.step``: how a decorated call records an edge.

A step call is one edge. Before the body runs, flowtrace opens the edge span (see
``_run``), takes its span context as the lineage id, and runs the body with
``FlowContext.lineage_parents == (that id,)``: anything the body publishes, and any
nested step, descends from this edge, in this process or (through propagation) another.
When the body returns, outputs are computed and the span ends.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import Token
from typing import Any, TypeVar, cast

from .._wrapping import wrap_in_scope
from ..context import _reset_current, _set_current, current
from ._run import Hashes, Identifiers, _begin, _Run, _Spec, _with_parent

__all__ = ["step"]

F = TypeVar("F", bound=Callable[..., Any])


class _LineageScope:
    """Runs a body with ``lineage_parents == (edge id,)``."""

    __slots__ = ("_id", "_token")

    def __init__(self, edge_id: str) -> None:
        self._id = edge_id

    def __enter__(self) -> None:
        self._token = _set_current(_with_parent(current(), self._id))

    def __exit__(self, *exc: object) -> None:
        _reset_current(self._token)


def _done(run: _Run, token: Token[Any], result: Any) -> Any:
    """After a plain or async body returned: leave its scope, finish the edge."""
    _reset_current(token)
    run.collect(result)
    run.finish()
    return result


def _failed(run: _Run, token: Token[Any], exc: BaseException) -> None:
    """After a plain or async body raised: leave its scope, finish the edge as failed."""
    _reset_current(token)
    run.finish("error", exc)


def step(
    name: str,
    *,
    inputs: Identifiers = None,
    outputs: Identifiers = None,
    code_version: str | None = None,
    params: Mapping[str, Any] | None = None,
    subjects: Identifiers = None,
    hashes: Hashes = None,
) -> Callable[[F], F]:
    """Decorate a transformation so every call records one lineage edge.

    ``inputs`` and ``subjects`` are identifiers or a callable of the call's arguments;
    ``outputs`` are identifiers or a callable of the result (for generator functions, of
    each yielded item). ``params`` (JSON) are recorded as given; ``hashes``
    (identifier -> ``sha256:...``, see :func:`~flowtrace.lineage.content_hash`) is a mapping
    or a callable of the result. Subjects become per-tenant keyed pseudonyms: configure
    ``flowtrace.lineage.configure(pseudonym_key=...)`` first or recording raises
    :class:`~flowtrace.errors.PseudonymKeyError` (before the body runs).

    Works on plain, async, generator and async-generator functions.

    Example::

        import flowtrace as ft
        from flowtrace.lineage import LineageGraph, edges_from_spans, ref
        from flowtrace.testing import Capture

        @ft.step(
            "normalize-charge",
            inputs=lambda event: [ref("stripe:charge", event["id"])],
            outputs=lambda order: [ref("postgres://billing/orders", order["id"])],
            code_version="billing-etl-2.3.1",
        )
        def normalize(event):
            return {"id": "o-" + event["id"]}

        with Capture() as capture, ft.context(tenant="acme"):
            normalize({"id": "ch_1"})
        graph = LineageGraph(edges_from_spans(capture.spans()))
        assert graph.upstream("postgres://billing/orders#o-ch_1") == ["stripe:charge#ch_1"]
    """
    spec = _Spec(name, inputs, outputs, code_version, params, subjects, hashes)

    def decorate(func: F) -> F:
        if inspect.isasyncgenfunction(func):
            return cast(F, _wrap_async_gen(func, spec))
        if inspect.isgeneratorfunction(func):
            return cast(F, _wrap_gen(func, spec))
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                run = _begin(spec, args, kwargs)
                token = _set_current(_with_parent(current(), run.id))
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    _failed(run, token, exc)
                    raise
                return _done(run, token, result)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = _begin(spec, args, kwargs)
            token = _set_current(_with_parent(current(), run.id))
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                _failed(run, token, exc)
                raise
            return _done(run, token, result)

        return cast(F, wrapper)

    return decorate


def _wrap_gen(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        run = _begin(spec, args, kwargs)
        gen = wrap_in_scope(func, lambda: _LineageScope(run.id))(*args, **kwargs)
        value: Any = None
        throw: BaseException | None = None
        try:
            while True:
                try:
                    item = gen.send(value) if throw is None else gen.throw(throw)
                except StopIteration as stop:
                    run.finish()
                    return stop.value
                throw = None
                run.collect(item)
                try:
                    value = yield item
                except GeneratorExit:
                    gen.close()
                    run.finish()
                    raise
                except BaseException as exc:
                    throw = exc
        except GeneratorExit:
            raise
        except BaseException as exc:
            run.finish("error", exc)
            raise

    return gen_wrapper


def _wrap_async_gen(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        run = _begin(spec, args, kwargs)
        agen = wrap_in_scope(func, lambda: _LineageScope(run.id))(*args, **kwargs)
        value: Any = None
        throw: BaseException | None = None
        try:
            while True:
                try:
                    item = await (agen.asend(value) if throw is None else agen.athrow(throw))
                except StopAsyncIteration:
                    run.finish()
                    return
                throw = None
                run.collect(item)
                try:
                    value = yield item
                except GeneratorExit:
                    await agen.aclose()
                    run.finish()
                    raise
                except BaseException as exc:
                    throw = exc
        except GeneratorExit:
            raise
        except BaseException as exc:
            run.finish("error", exc)
            raise

    return agen_wrapper
