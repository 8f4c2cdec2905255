"""Type stub for the optional C accelerator of ``flowtrace.context`` (see ``_speedups.c``)."""

from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any

class ScopeBase(dict[str, Any]):
    def __enter__(self) -> Any: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

def configure(
    var: ContextVar[Any],
    memo: dict[tuple[Any, ...], tuple[Any, Any]],
    slow_enter: Callable[[Any, Any, tuple[Any, ...] | None], Any],
    py_enter: Callable[[Any], Any],
    py_exit: Callable[[Any, Any, Any, Any], None],
) -> None: ...
