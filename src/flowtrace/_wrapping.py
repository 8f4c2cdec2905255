"""Wrap any callable so a scope is entered while its body runs.

Handles plain, async, generator and async-generator functions (and methods: the wrappers
are plain functions, so they bind). For generators the scope is entered around each
resumption only and exited before every ``yield``: a context entered by a generator must
never leak into its consumer between items, and ``ContextVar.reset`` must run in the same
Context that set it. ``functools.wraps`` keeps name, docstring and ``inspect.signature``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

__all__ = ["wrap_in_scope"]

F = TypeVar("F", bound=Callable[..., Any])
ScopeFactory = Callable[[], AbstractContextManager[Any]]


def _drive_generator(
    gen: Generator[Any, Any, Any], scope: ScopeFactory
) -> Generator[Any, Any, Any]:
    value: Any = None
    throw: BaseException | None = None
    while True:
        try:
            with scope():
                item = gen.send(value) if throw is None else gen.throw(throw)
        except StopIteration as stop:
            return stop.value
        throw = None
        try:
            value = yield item
        except GeneratorExit:
            with scope():
                gen.close()
            raise
        except BaseException as exc:  # forwarded into the wrapped generator
            throw = exc


def wrap_in_scope(func: F, scope: ScopeFactory) -> F:
    """Return a wrapper of ``func`` that runs its body inside ``scope()``."""
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            agen = func(*args, **kwargs)
            value: Any = None
            throw: BaseException | None = None
            while True:
                try:
                    with scope():
                        item = await (agen.asend(value) if throw is None else agen.athrow(throw))
                except StopAsyncIteration:
                    return
                throw = None
                try:
                    value = yield item
                except GeneratorExit:
                    with scope():
                        await agen.aclose()
                    raise
                except BaseException as exc:  # forwarded into the wrapped generator
                    throw = exc

        return cast(F, agen_wrapper)
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            return (yield from _drive_generator(func(*args, **kwargs), scope))

        return cast(F, gen_wrapper)
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope():
                return await func(*args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with scope():
            return func(*args, **kwargs)

    return cast(F, wrapper)

