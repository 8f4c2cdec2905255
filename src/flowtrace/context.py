"""The flow context: whose data this is, why it is processed, where it may live.

A :class:`FlowContext` is immutable and lives in a :mod:`contextvars` variable, so it
follows asyncio tasks automatically and never bleeds between concurrent requests.
Scopes (:func:`context`, :func:`cross_tenant`) work as context managers and decorators
and always restore the previous context on exit, exceptions included.

Tenancy fails closed: entering a *different* tenant inside a tenant scope raises
:class:`~flowtrace.errors.TenantSwitchError` unless a :func:`cross_tenant` scope (with a
reason, always reported to observers) is active.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import _observe
from ._flowcontext import (
    _BAGGAGE,
    _INDEX,
    _LINEAGE,
    EMPTY,
    FIELDS,
    MAX_BAGGAGE_ENTRIES,
    MAX_LINEAGE_PARENTS,
    MAX_VALUE_LENGTH,
    FlowContext,
    _check,
    _check_str,
)
from ._observe import EventKind, notify
from ._wrapping import wrap_in_scope
from .errors import InvalidContextValueError, MissingTenantError, TenantSwitchError

__all__ = [
    "FIELDS",
    "MAX_BAGGAGE_ENTRIES",
    "MAX_LINEAGE_PARENTS",
    "MAX_VALUE_LENGTH",
    "FlowContext",
    "context",
    "cross_tenant",
    "cross_tenant_reason",
    "current",
    "require_tenant",
]

# Defined in _flowcontext (pure data); its public home stays flowtrace.context.
FlowContext.__module__ = __name__

F = TypeVar("F", bound=Callable[..., Any])

_new = tuple.__new__

# The variable holds a node (context, parent node, scope that pushed it). Scopes keep no
# per-entry state, so one scope object can be shared by concurrent tasks and threads; exit
# pops back to the parent node after checking it pops its own node (LIFO is enforced).
_Node = tuple[FlowContext, Any, Any]
_ROOT: Final[_Node] = (EMPTY, None, None)
_var: ContextVar[_Node] = ContextVar("flowtrace.context", default=_ROOT)
_get = _var.get
_set = _var.set
# Same node scheme for cross-tenant scopes: (reason, parent node, scope) or None.
_cross_tenant: ContextVar[tuple[str, Any, Any] | None] = ContextVar(
    "flowtrace.cross_tenant", default=None
)
_cross_get = _cross_tenant.get
_cross_set = _cross_tenant.set

# Derived contexts memoized per (id(parent), fields): services re-enter the same tenant and
# purpose values constantly, and validating + building a context is most of a scope's cost.
# Entries keep their parent alive so its id cannot be reused; the cache is bounded.
_DERIVED_MAX: Final = 4096
_derived: dict[tuple[Any, ...], tuple[FlowContext, FlowContext]] = {}


def current() -> FlowContext:
    """The flow context in force here (an empty one outside any scope).

    Example::

        import flowtrace as ft

        assert ft.current().is_empty                      # outside any scope
        with ft.context(tenant="acme", region="eu"):
            assert (ft.current().tenant, ft.current().region) == ("acme", "eu")
    """
    return _get()[0]


_observe._current_context = current


def require_tenant() -> str:
    """The current tenant; raises :class:`MissingTenantError` when there is none.

    Example::

        import flowtrace as ft

        with ft.context(tenant="acme"):
            assert ft.require_tenant() == "acme"
        try:
            ft.require_tenant()                           # no tenant here
        except ft.MissingTenantError as error:
            print(error)
    """
    tenant: str | None = _get()[0][0]
    if tenant is None:
        raise MissingTenantError(
            "this operation needs a tenant but the flow context has none; "
            "run it inside `with flowtrace.context(tenant=...)` or a @flowtrace.handler"
        )
    return tenant


def cross_tenant_reason() -> str | None:
    """The reason of the active :func:`cross_tenant` scope, or ``None``.

    Example::

        import flowtrace as ft

        assert ft.cross_tenant_reason() is None
        with ft.cross_tenant(reason="migration 2026-11"):
            assert ft.cross_tenant_reason() == "migration 2026-11"
    """
    node = _cross_get()
    return None if node is None else node[0]


def _derive(cur: FlowContext, fields: Mapping[str, object]) -> FlowContext:
    values = list(cur)
    for name, value in fields.items():
        index = _INDEX.get(name)
        if index is not None and value is not None:
            # Fast path for the common case: a plain string field.
            values[index] = _check_str(name, value)
        else:
            values[
                index if index is not None else _LINEAGE if name == "lineage_parents" else _BAGGAGE
            ] = _check(name, value)
    new_tenant = values[0]
    old_tenant = cur[0]
    if old_tenant is not None and new_tenant != old_tenant:
        node = _cross_get()
        if node is None:
            raise TenantSwitchError(
                f"cannot enter tenant {new_tenant!r} inside tenant {old_tenant!r}; "
                "if this is deliberate, wrap it in `with flowtrace.cross_tenant(reason=...)`"
            )
        notify(
            EventKind.TENANT_SWITCH,
            {"from_tenant": old_tenant, "to_tenant": new_tenant, "reason": node[0]},
            cur,
        )
    return _new(FlowContext, values)


class _Scope:
    """Shared machinery: the decorator form (sync/async/generators)."""

    __slots__ = ()

    def _fresh(self) -> AbstractContextManager[Any]:
        """A scope to enter for one call (scopes are stateless, so usually ``self``)."""
        raise NotImplementedError

    def __call__(self, func: F) -> F:
        """Use the scope as a decorator: each call (or generator step) runs inside it."""
        return wrap_in_scope(func, self._fresh)


def _enter_slow(
    scope: Mapping[str, object], node: _Node, key: tuple[Any, ...] | None
) -> FlowContext:
    """Enter on a memo miss: derive (validate, check and report a tenant switch), memoize, push.

    Shared by the pure-Python scope and the C accelerator (which calls it for anything
    that is not a memo hit); ``key`` is the caller's memo key, or ``None`` when the
    scope's values are unhashable.
    """
    cur = node[0]
    new = _derive(cur, scope)
    # A tenant switch is never memoized: it must be checked and reported every time.
    if key is not None and (cur[0] is None or cur[0] == new[0]):
        if len(_derived) >= _DERIVED_MAX:
            _derived.clear()
        _derived[key] = (cur, new)
    _set((new, node, scope))
    return new


class _PyScopeBase(dict[str, Any]):
    """The pure-Python hot path of :class:`context` (the fallback of ``_speedups``)."""

    __slots__ = ()

    def __enter__(self) -> FlowContext:
        node = _get()
        cur = node[0]
        try:
            key: tuple[Any, ...] | None = (id(cur), *self.items())
            hit = _derived.get(key)  # type: ignore[arg-type]
        except TypeError:  # unhashable values (lists, dicts): no memo
            key = hit = None
        if hit is not None and hit[0] is cur:
            new = hit[1]
            _set((new, node, self))
            return new
        return _enter_slow(self, node, key)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        node = _get()
        if node[2] is not self:
            raise RuntimeError(
                "flowtrace scopes exited out of order: this scope is not the innermost one "
                "(a scope entered by hand was not exited, or exited in another task)"
            )
        _set(node[1])


def _load_speedups() -> type[dict[str, Any]] | None:
    """The C scope base from ``_speedups``, wired to this module; ``None`` to stay pure.

    ``FLOWTRACE_PURE_PYTHON=1`` (any value but empty or ``0``) forces the pure-Python
    scope; so does an extension that was not built (no compiler at install time).
    """
    if os.environ.get("FLOWTRACE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    _speedups.configure(
        _var, _derived, _enter_slow, _PyScopeBase.__enter__, _PyScopeBase.__exit__
    )
    return _speedups.ScopeBase


_CScopeBase: Final = _load_speedups()
if TYPE_CHECKING:  # both bases behave the same; type-check against the Python one
    _ScopeBase = _PyScopeBase
else:
    _ScopeBase = _PyScopeBase if _CScopeBase is None else _CScopeBase
SPEEDUPS: Final[bool] = _CScopeBase is not None
"""True when scopes run on the C accelerator (``flowtrace._speedups``)."""


class _ContextBody(_Scope):
    """Everything of :class:`context` except the hot path (which comes from the base)."""

    __slots__ = ()

    def _fresh(self) -> AbstractContextManager[Any]:
        return self  # type: ignore[return-value]

    # Scopes also work with `async with` for symmetry with async frameworks.
    async def __aenter__(self) -> FlowContext:
        return self.__enter__()  # type: ignore[attr-defined,no-any-return]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)  # type: ignore[attr-defined]

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a flowtrace.context scope is read-only; create a new one")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly
    __ior__ = _readonly

    def __repr__(self) -> str:
        items = self.items()  # type: ignore[attr-defined]
        return f"flowtrace.context({', '.join(f'{k}={v!r}' for k, v in items)})"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


class context(_ContextBody, _ScopeBase):  # type: ignore[misc]
    """Enter a flow context derived from the current one.

    ``with flowtrace.context(tenant="acme", purpose="billing"):`` or as a decorator.
    Unspecified fields are inherited; ``None`` clears a field. Entering a different tenant
    inside a tenant scope raises :class:`~flowtrace.errors.TenantSwitchError` unless inside
    :func:`cross_tenant`. Values are validated on entry
    (:class:`~flowtrace.errors.InvalidContextValueError`).

    A scope object holds only the fields it sets (it is a read-only view of them) and no
    per-entry state: build it once and enter it from any number of threads and tasks.
    Scopes must exit in the reverse order they were entered, as ``with`` guarantees.

    Example::

        import flowtrace as ft

        with ft.context(tenant="acme", user="u-1"):
            assert ft.current().tenant == "acme"
            with ft.context(purpose="billing"):           # derived: keeps tenant and user
                assert ft.current().user == "u-1"

        BILLING = ft.context(purpose="billing")           # reusable, also as a decorator

        @BILLING
        def charge() -> str | None:
            return ft.current().purpose

        assert charge() == "billing"
    """

    __slots__ = ()


class cross_tenant(_Scope):
    """A privileged scope in which tenant switches are allowed. Always reported.

    ``reason`` is mandatory and non-empty; entering reports a ``cross_tenant`` event
    (and the audit log records it when one is configured). Observers that fail stop the
    scope from being entered (fail closed).

    Example::

        import flowtrace as ft

        with ft.context(tenant="acme"):
            with ft.cross_tenant(reason="usage dashboard"):   # reported as a flow event
                with ft.context(tenant="globex"):             # allowed only in here
                    assert ft.current().tenant == "globex"
    """

    __slots__ = ("_reason",)

    def __init__(self, reason: str) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidContextValueError(
                "reason", "cross_tenant needs a non-empty reason saying why tenants are crossed"
            )
        self._reason = _check_str("reason", reason)

    @property
    def reason(self) -> str:
        """Why tenants are being crossed."""
        return self._reason

    def _fresh(self) -> cross_tenant:
        return self

    def __enter__(self) -> FlowContext:
        notify(EventKind.CROSS_TENANT, {"reason": self._reason})
        _cross_set((self._reason, _cross_get(), self))
        return _get()[0]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        node = _cross_get()
        if node is None or node[2] is not self:
            raise RuntimeError("flowtrace cross_tenant scopes exited out of order")
        _cross_set(node[1])

    async def __aenter__(self) -> FlowContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"flowtrace.cross_tenant(reason={self._reason!r})"


def _set_current(ctx: FlowContext) -> Token[_Node]:
    """Install ``ctx`` as-is (no tenant-switch check). For adapters that start from empty."""
    return _set((ctx, _get(), None))


_reset_current = _var.reset
"""Undo :func:`_set_current` (the C-level ``ContextVar.reset``)."""
