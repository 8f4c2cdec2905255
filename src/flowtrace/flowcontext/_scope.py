"""Scopes: :class:`context` and :class:`cross_tenant`, and :func:`derive`.

Scopes work as context managers and decorators and always restore the previous context
on exit, exceptions included. Tenancy fails closed: entering a *different* tenant inside
a tenant scope raises :class:`~flowtrace.errors.TenantSwitchError` unless a
:class:`cross_tenant` scope (with a reason, always reported to observers) is active.
See :mod:`._state` for the node chain and the generator rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from sys import _getframe
from types import FrameType, TracebackType
from typing import Any, Final, TypeVar

from .._wrapping import wrap_in_scope
from ..errors import InvalidContextValueError, MissingTenantError, TenantSwitchError
from ._events import EventKind, notify
from ._state import CROSS_ROOT, ROOT, Node, cross_get, cross_var, get, set_node, visible
from ._value import _BAGGAGE, _INDEX, _LINEAGE, FlowContext, _check, _check_str

__all__ = [
    "context",
    "cross_tenant",
    "cross_tenant_reason",
    "derive",
    "require_tenant",
]

F = TypeVar("F", bound=Callable[..., Any])

_new = tuple.__new__
# Code flags of generator and async-generator frames (inspect.CO_GENERATOR | CO_ASYNC_GENERATOR).
_GENERATOR_FLAGS: Final = 0x20 | 0x200

# Derived contexts memoized per (id(parent), fields): services re-enter the same tenant and
# purpose values constantly, and validating + building a context is most of a scope's cost.
# `_last` answers the common case with one lookup by fields alone (the last parent they were
# derived from); `_derived` remembers every parent. Entries keep their parent alive so its
# id cannot be reused; both are bounded.
_DERIVED_MAX: Final = 4096
_derived: dict[tuple[Any, ...], tuple[FlowContext, FlowContext]] = {}
_last: dict[tuple[Any, ...], tuple[FlowContext, FlowContext]] = {}
# The most recent entry as (fields, parent, derived): a loop entering equal fields under the
# same parent compares two small dicts (C) instead of building a key. Replaced atomically.
_recent: tuple[Any, Any, Any] = ({}, None, None)  # (fields, parent, derived)
_same_fields = dict.__eq__


def require_tenant() -> str:
    """The current tenant; raises :class:`~flowtrace.errors.MissingTenantError` without one.

    >>> import flowtrace as ft
    >>> with ft.context(tenant="acme"):
    ...     ft.require_tenant()
    'acme'
    """
    node = get()
    ctx: FlowContext = node[0] if not node[4] else visible(node)[0]
    tenant = ctx.tenant
    if tenant is None:
        raise MissingTenantError(
            "this operation needs a tenant but the flow context has none; "
            "run it inside `with flowtrace.context(tenant=...)` or a @flowtrace.handler"
        )
    return tenant


def cross_tenant_reason() -> str | None:
    """The reason of the active :class:`cross_tenant` scope, or ``None``.

    >>> import flowtrace as ft
    >>> with ft.cross_tenant(reason="usage dashboard"):
    ...     ft.cross_tenant_reason()
    'usage dashboard'
    """
    node = cross_get()
    return node[0] if not node[4] else visible(node)[0]  # type: ignore[no-any-return]


def derive(cur: FlowContext, fields: Mapping[str, object]) -> FlowContext:
    """``cur`` with ``fields`` applied: validated, and a tenant switch checked and reported.

    Documented internal interface (the handler decorator resolves fields per call).
    """
    values = list(cur)
    for name, value in fields.items():
        index = _INDEX.get(name)
        if index is not None and value is not None:
            values[index] = _check_str(name, value)  # the common case: a plain string field
        else:
            values[
                index if index is not None else _LINEAGE if name == "lineage_parents" else _BAGGAGE
            ] = _check(name, value)
    new_tenant = values[0]
    old_tenant = cur.tenant
    if old_tenant is not None and new_tenant != old_tenant:
        reason = cross_tenant_reason()
        if reason is None:
            raise TenantSwitchError(
                f"cannot enter tenant {new_tenant!r} inside tenant {old_tenant!r}; "
                "if this is deliberate, wrap it in `with flowtrace.cross_tenant(reason=...)`"
            )
        notify(
            EventKind.TENANT_SWITCH,
            {"from_tenant": old_tenant, "to_tenant": new_tenant, "reason": reason},
            cur,
        )
    return _new(FlowContext, values)


def _owner(frame: FrameType) -> FrameType | None:
    return frame if frame.f_code.co_flags & _GENERATOR_FLAGS else None


def _push(var_set: Callable[[Node], Any], node: Node, value: Any, scope: Any, frame: Any) -> None:
    """Push a node in the slow case: a generator body entered it, or one is on the chain."""
    owner = _owner(frame)
    base = visible(node) if node[4] else node
    var_set((value, node, scope, owner, True if owner is not None else node[4], base))


def _pop(var_set: Callable[[Node], Any], node: Node, scope: Any, frame: Any, root: Node) -> None:
    """Exit ``scope`` when it is not the plain innermost node (see the generator rule)."""
    owner = _owner(frame)
    above: list[Node] = []
    found = node
    while found is not root and found is not None:
        if found[2] is scope and found[3] is owner:
            break
        above.append(found)
        found = found[1]
    else:
        if owner is not None:
            return  # closed from another context (or collected elsewhere): nothing of ours here
        raise RuntimeError(
            "flowtrace scopes exited out of order: this scope is not active here "
            "(a scope entered by hand was not exited, or exited in another task)"
        )
    if above and owner is None and not any(n[3] is not None for n in above):
        raise RuntimeError(
            "flowtrace scopes exited out of order: this scope is not the innermost one "
            "(a scope entered by hand was not exited, or exited in another task)"
        )
    # Unlink the node; rebuild the ones pushed after it on top of its parent.
    rebuilt = found[1]
    for n in reversed(above):
        base = n[5] if n[5] is not found else rebuilt
        rebuilt = (n[0], rebuilt, n[2], n[3], n[3] is not None or rebuilt[4], base)
    var_set(rebuilt)


def _enter_slow(scope: context, node: Node, frame: FrameType) -> FlowContext:
    cur_node = visible(node) if node[4] else node
    cur: FlowContext = cur_node[0]
    new = _derive_memo(scope, cur)
    _push(set_node, node, new, scope, frame)
    return new


def _derive_memo(scope: context, cur: FlowContext) -> FlowContext:
    """Derive ``scope`` from ``cur`` through the memo (the miss path of a scope entry)."""
    global _recent
    new = _derive_memoized(scope, cur)
    if cur.tenant is None or cur.tenant == new.tenant:  # never replay a tenant switch
        _recent = (scope, cur, new)
    return new


def _derive_memoized(scope: context, cur: FlowContext) -> FlowContext:
    key: tuple[Any, ...] | None = tuple(scope.items())
    try:
        hit = _last.get(key)  # type: ignore[arg-type]
        if hit is not None and hit[0] is cur:
            return hit[1]
        full: tuple[Any, ...] | None = (id(cur), key)
        hit = _derived.get(full)  # type: ignore[arg-type]
    except TypeError:  # unhashable values (lists, dicts): no memo
        key = full = hit = None
    if hit is not None and hit[0] is cur:
        _last[key] = hit  # type: ignore[index]
        return hit[1]
    new = derive(cur, scope)
    # A tenant switch is never memoized: it must be checked and reported every time.
    if key is not None and (cur.tenant is None or cur.tenant == new.tenant):
        if len(_derived) >= _DERIVED_MAX:
            _derived.clear()
        if len(_last) >= _DERIVED_MAX:
            _last.clear()
        _derived[full] = _last[key] = (cur, new)  # type: ignore[index]
    return new


class _Scope:
    """Shared machinery: the decorator form (sync/async/generators)."""

    __slots__ = ()

    def __call__(self, func: F) -> F:
        """Use the scope as a decorator: each call (or generator step) runs inside it."""
        return wrap_in_scope(func, self)


class context(dict[str, Any], _Scope):
    """Enter a flow context derived from the current one.

    Unspecified fields are inherited; ``None`` clears a field. Entering a different tenant
    inside a tenant scope raises :class:`~flowtrace.errors.TenantSwitchError` unless inside
    :class:`cross_tenant`. Values are validated on entry
    (:class:`~flowtrace.errors.InvalidContextValueError`).

    A scope object holds only the fields it sets (it is a read-only view of them) and no
    per-entry state: build it once and enter it from any number of threads and tasks.
    Scopes exit in the reverse order they were entered, as ``with`` guarantees; a scope
    entered inside a generator body is in force only while the generator runs.

    >>> import flowtrace as ft
    >>> with ft.context(tenant="acme", purpose="billing") as ctx:
    ...     (ctx.tenant, ft.current().purpose)
    ('acme', 'billing')
    """

    __slots__ = ()

    def __enter__(self) -> FlowContext:
        node = get()
        frame = _getframe(1)
        if node[4] or frame.f_code.co_flags & 0x220:  # _GENERATOR_FLAGS, inlined
            return _enter_slow(self, node, frame)
        cur = node[0]
        recent = _recent
        new: FlowContext
        if recent[1] is cur and _same_fields(self, recent[0]) is True:
            new = recent[2]
        else:
            new = _derive_memo(self, cur)
        set_node((new, node, self, None, False, node))
        return new

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        node = get()
        if node[2] is self and node[3] is None:
            set_node(node[1])
        else:
            _pop(set_node, node, self, _getframe(1), ROOT)

    # Scopes also work with `async with` for symmetry with async frameworks.
    async def __aenter__(self) -> FlowContext:
        node = get()
        return _enter_slow(self, node, _getframe(1))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        node = get()
        if node[2] is self and node[3] is None:
            set_node(node[1])
        else:
            _pop(set_node, node, self, _getframe(1), ROOT)

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a flowtrace.context scope is read-only; create a new one")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"flowtrace.context({', '.join(f'{k}={v!r}' for k, v in self.items())})"

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


class cross_tenant(_Scope):
    """A privileged scope in which tenant switches are allowed. Always reported.

    ``reason`` is mandatory and non-empty; entering reports a ``cross_tenant`` event
    (and the audit log records it when one is configured). Observers that fail stop the
    scope from being entered (fail closed). The generator rule of :class:`context`
    applies: the privilege never outlives a ``yield``.

    >>> import flowtrace as ft
    >>> with ft.context(tenant="acme"), ft.cross_tenant(reason="usage dashboard"):
    ...     with ft.context(tenant="globex"):
    ...         ft.current().tenant
    'globex'
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

    def _enter(self, frame: FrameType) -> FlowContext:
        notify(EventKind.CROSS_TENANT, {"reason": self._reason})
        _push(cross_var.set, cross_get(), self._reason, self, frame)
        node = get()
        return node[0] if not node[4] else visible(node)[0]  # type: ignore[no-any-return]

    def _exit(self, frame: FrameType) -> None:
        node = cross_get()
        if node[2] is self and node[3] is None:
            cross_var.set(node[1])
        else:
            _pop(cross_var.set, node, self, frame, CROSS_ROOT)

    def __enter__(self) -> FlowContext:
        return self._enter(_getframe(1))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(_getframe(1))

    async def __aenter__(self) -> FlowContext:
        return self._enter(_getframe(1))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(_getframe(1))

    def __repr__(self) -> str:
        return f"flowtrace.cross_tenant(reason={self._reason!r})"


_ScopeFactory = Callable[[], AbstractContextManager[Any]]
