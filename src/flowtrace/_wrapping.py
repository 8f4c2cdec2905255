"""The one wrapper family: run plain, async, generator and async-generator callables in steps.

Scopes used as decorators, ``@handler``, ``@consumer`` and ``@step`` all wrap functions
here. A wrapper asks ``begin(args, kwargs, resumable)`` for a :class:`Step` per call and
drives it:

* plain and async functions: ``enter`` - body (``call``) - ``exit`` - ``result`` (or
  ``error``);
* generators and async generators: ``enter``/``exit`` around *each* resumption only, so
  nothing the step sets is in force between items or leaks to the consumer; ``item`` sees
  each yielded item; ``finish`` runs once when the generator is exhausted or closed (also
  when it is garbage-collected), ``error`` when it raises.

For plain and async functions ``begin`` may instead return a ``contextvars.Token`` (the
fast lane: it already set one context variable), which ``release`` resets after the body.
Wrappers are plain functions of the same kind as the function (so they bind as methods and
``inspect`` answers the same) and keep name, docstring and signature (``functools.wraps``).

May import: nothing from flowtrace (it is below every layer that wraps).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from contextvars import Token
from typing import Any, TypeVar, cast

__all__ = ["Begin", "ScopeStep", "Step", "wrap", "wrap_in_scope"]

F = TypeVar("F", bound=Callable[..., Any])


class Step:
    """What one wrapped call does around its body. Every hook is optional."""

    __slots__ = ()

    def enter(self) -> None:
        """Before the body, and before each resumption of a generator."""

    def exit(self) -> None:
        """After the body, and after each resumption (before the wrapper yields)."""

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the body (or create the generator); a step may check or substitute here."""
        return func(*args, **kwargs)

    def result(self, value: Any) -> Any:
        """A plain or async body returned ``value``; returns what the wrapper returns."""
        return value

    def error(self, exc: BaseException) -> None:
        """The body (or a resumption) raised ``exc``; it is re-raised afterwards."""

    def item(self, item: Any) -> None:
        """A generator yielded ``item``."""

    def finish(self) -> None:
        """A generator was exhausted or closed."""


Begin = Callable[[tuple[Any, ...], dict[str, Any], bool], "Step | Token[Any]"]
"""``begin(args, kwargs, resumable)``: the step of one call (a Step when ``resumable``)."""


def wrap(func: F, begin: Begin, release: Callable[[Any], object] | None = None) -> F:
    """Wrap ``func`` so each call is driven by the step ``begin`` returns."""
    if inspect.isasyncgenfunction(func):
        return cast(F, _wrap_asyncgen(func, begin))
    if inspect.isgeneratorfunction(func):
        return cast(F, _wrap_generator(func, begin))
    if inspect.iscoroutinefunction(func):
        return cast(F, _wrap_async(func, begin, release))
    return cast(F, _wrap_sync(func, begin, release))


def _wrap_sync(
    func: Callable[..., Any], begin: Begin, release: Callable[[Any], object] | None
) -> Callable[..., Any]:
    token_type = Token

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        step = begin(args, kwargs, False)
        if type(step) is token_type:  # fast lane: one context variable set, nothing else
            try:
                return func(*args, **kwargs)
            finally:
                release(step)  # type: ignore[misc]
        step.enter()  # type: ignore[union-attr]
        try:
            value = step.call(func, args, kwargs)  # type: ignore[union-attr]
        except BaseException as exc:
            step.exit()  # type: ignore[union-attr]
            step.error(exc)  # type: ignore[union-attr]
            raise
        step.exit()  # type: ignore[union-attr]
        return step.result(value)  # type: ignore[union-attr]

    return wrapper


def _wrap_async(
    func: Callable[..., Any], begin: Begin, release: Callable[[Any], object] | None
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        step = begin(args, kwargs, False)
        if type(step) is Token:
            try:
                return await func(*args, **kwargs)
            finally:
                release(step)  # type: ignore[misc]
        assert isinstance(step, Step)
        step.enter()
        try:
            value = step.call(func, args, kwargs)
            if inspect.isawaitable(value):
                value = await value
        except BaseException as exc:
            step.exit()
            step.error(exc)
            raise
        step.exit()
        return step.result(value)

    return wrapper


def _start(
    step: Step, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    step.enter()
    try:
        made = step.call(func, args, kwargs)
    except BaseException as exc:
        step.exit()
        step.error(exc)
        raise
    step.exit()
    return made


def _wrap_generator(func: Callable[..., Any], begin: Begin) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        step = cast(Step, begin(args, kwargs, True))
        gen = _start(step, func, args, kwargs)
        if not inspect.isgenerator(gen):  # a substitute ran instead of the body
            step.finish()
            return gen
        value: Any = None
        throw: BaseException | None = None
        while True:
            step.enter()
            try:
                item = gen.send(value) if throw is None else gen.throw(throw)
            except StopIteration as stop:
                step.exit()
                step.finish()
                return stop.value
            except BaseException as exc:
                step.exit()
                step.error(exc)
                raise
            step.exit()
            step.item(item)
            throw = None
            try:
                value = yield item
            except GeneratorExit:
                step.enter()
                try:
                    gen.close()
                finally:
                    step.exit()
                    step.finish()
                raise
            except BaseException as exc:  # forwarded into the wrapped generator
                throw = exc

    return wrapper


def _wrap_asyncgen(func: Callable[..., Any], begin: Begin) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        step = cast(Step, begin(args, kwargs, True))
        agen = _start(step, func, args, kwargs)
        if not inspect.isasyncgen(agen):  # a substitute ran instead of the body
            if inspect.isawaitable(agen):
                await agen
            step.finish()
            return
        value: Any = None
        throw: BaseException | None = None
        while True:
            step.enter()
            try:
                item = await (agen.asend(value) if throw is None else agen.athrow(throw))
            except StopAsyncIteration:
                step.exit()
                step.finish()
                return
            except BaseException as exc:
                step.exit()
                step.error(exc)
                raise
            step.exit()
            step.item(item)
            throw = None
            try:
                value = yield item
            except GeneratorExit:
                step.enter()
                try:
                    await agen.aclose()
                finally:
                    step.exit()
                    step.finish()
                raise
            except BaseException as exc:  # forwarded into the wrapped generator
                throw = exc

    return wrapper


class ScopeStep(Step):
    """Enter a context manager around the body or each resumption (scopes as decorators)."""

    __slots__ = ("scope",)

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    def enter(self) -> None:
        self.scope.__enter__()

    def exit(self) -> None:
        self.scope.__exit__(None, None, None)


def wrap_in_scope(func: F, scope: Any) -> F:
    """Wrap ``func`` so its body (each generator step) runs inside the context manager
    ``scope``; the scope must be reusable (flowtrace scopes keep no per-entry state)."""
    step = ScopeStep(scope)
    return wrap(func, lambda args, kwargs, resumable: step)
