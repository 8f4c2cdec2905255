"""Per-decoration state of ``@flowtrace.handler``: resolve, memoize, check the carrier."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan

from ..errors import InvalidContextValueError, MissingTenantError, TenantMismatchError
from ..flowcontext import FIELDS, EventKind, FlowContext, current, derive, notify
from ..propagation import extract_parsed, remote_parent
from ._instrument import Plan

__all__ = ["HandlerSpec", "Resolver"]

Resolver = str | Callable[..., "str | None"] | None
"""A constant value, or a callable receiving the call's own arguments and returning one.

Example::

    import flowtrace as ft

    @ft.handler(tenant=lambda claims: claims["tenant"], purpose="support")
    def open_ticket(claims):
        return ft.current().tenant, ft.current().purpose

    assert open_ticket({"tenant": "acme"}) == ("acme", "support")
"""

_MEMO_SIZE: Final = 1024


class HandlerSpec:
    """Per-decoration state. Resolved contexts are memoized per (resolved values, outer
    context) so a hot handler pays validation once per distinct caller, not per call."""

    __slots__ = (
        "carrier",
        "constants",
        "last",
        "memo",
        "name",
        "require_tenant",
        "resolve",
        "resolver_names",
        "resolvers",
    )

    def __init__(
        self,
        name: str,
        fields: dict[str, Resolver],
        resolve: Callable[..., Mapping[str, str | None]] | None,
        carrier: Callable[..., Mapping[str, Any] | None] | None,
    ) -> None:
        self.name = name
        self.constants: dict[str, str] = {}
        names: list[str] = []
        resolvers: list[Callable[..., str | None]] = []
        for field, value in fields.items():
            if value is None:
                continue
            if callable(value):
                names.append(field)
                resolvers.append(value)
            else:
                self.constants[field] = value
        self.resolver_names = tuple(names)
        self.resolvers = tuple(resolvers)
        self.resolve = resolve
        self.carrier = carrier
        # A tenant source was declared: it must produce a tenant (fail closed).
        self.require_tenant = fields.get("tenant") is not None or resolve is not None
        self.last: tuple[FlowContext, FlowContext] | None = None
        self.memo: dict[tuple[object, ...], tuple[FlowContext, FlowContext]] = {}

    def _build(self, cur: FlowContext, fields: dict[str, object]) -> FlowContext:
        if self.require_tenant and fields.get("tenant") is None:
            raise MissingTenantError(
                f"handler {self.name!r}: the tenant resolver returned no tenant; refusing the "
                "request (check the credentials the resolver reads)"
            )
        return derive(cur, fields)

    def constant_context(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
        """Fast ``prepare`` for handlers with constant fields only and no carrier."""
        cur = current()
        last = self.last
        if last is not None and last[0] is cur:
            return last[1]
        ctx = self._build(cur, dict(self.constants))
        if _memoizable(cur, ctx):
            self.last = (cur, ctx)
        return ctx

    def _miss(self, cur: FlowContext, values: tuple[object, ...]) -> FlowContext:
        """Build, validate and memoize the context for ``values`` under ``cur``."""
        fields: dict[str, object] = dict(self.constants)
        fields.update(zip(self.resolver_names, values, strict=True))
        ctx = self._build(cur, fields)
        if _memoizable(cur, ctx):
            memo = self.memo
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[values] = (cur, ctx)
        return ctx

    def fast_prepare(self) -> Callable[[tuple[Any, ...], dict[str, Any]], FlowContext]:
        """A ``prepare`` specialised for one or two resolvers (the hot, common case)."""
        memo = self.memo
        miss = self._miss
        if len(self.resolvers) == 1:
            (r0,) = self.resolvers

            def prepare_one(args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
                cur = current()
                values = (r0(*args, **kwargs),)
                try:
                    hit = memo.get(values)
                except TypeError:  # unhashable: validation in _miss names the field
                    return miss(cur, values)
                if hit is not None and hit[0] is cur:
                    return hit[1]
                return miss(cur, values)

            return prepare_one
        r0, r1 = self.resolvers

        def prepare_two(args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
            cur = current()
            values = (r0(*args, **kwargs), r1(*args, **kwargs))
            try:
                hit = memo.get(values)
            except TypeError:  # unhashable: validation in _miss names the field
                return miss(cur, values)
            if hit is not None and hit[0] is cur:
                return hit[1]
            return miss(cur, values)

        return prepare_two

    def context(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext:
        """The resolved flow context for one call (also ``prepare`` without a carrier)."""
        cur = current()
        if self.resolve is not None:
            fields = self._resolve_mapping(args, kwargs)
            fields.update(self.constants)
            for field, resolver in zip(self.resolver_names, self.resolvers, strict=True):
                fields[field] = resolver(*args, **kwargs)
            return self._build(cur, fields)
        resolvers = self.resolvers
        if not resolvers:
            last = self.last
            if last is not None and last[0] is cur:
                return last[1]
            ctx = self._build(cur, dict(self.constants))
            if _memoizable(cur, ctx):
                self.last = (cur, ctx)
            return ctx
        if len(resolvers) == 1:
            values: tuple[object, ...] = (resolvers[0](*args, **kwargs),)
        elif len(resolvers) == 2:
            values = (resolvers[0](*args, **kwargs), resolvers[1](*args, **kwargs))
        else:
            values = tuple([resolver(*args, **kwargs) for resolver in resolvers])
        try:
            hit = self.memo.get(values)
        except TypeError:  # unhashable value: validation in _miss names the field
            hit = None
        if hit is not None and hit[0] is cur:
            return hit[1]
        return self._miss(cur, values)

    def _resolve_mapping(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, object]:
        assert self.resolve is not None
        resolved = self.resolve(*args, **kwargs)
        if not isinstance(resolved, Mapping):
            raise InvalidContextValueError(
                "resolve", f"must return a mapping of field names, got {type(resolved)!r}"
            )
        fields: dict[str, object] = {}
        for key, value in resolved.items():
            if key not in FIELDS:
                raise InvalidContextValueError(
                    key, f"is not a field a handler resolves; use one of {', '.join(FIELDS)}"
                )
            fields[key] = value
        return fields

    def prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext | Plan:
        ctx = self.context(args, kwargs)
        if self.carrier is None:
            return ctx
        raw = self.carrier(*args, **kwargs)
        if raw is None:
            return ctx
        parsed = extract_parsed(raw)  # untrusted: ContextPropagationError when malformed
        remote = parsed.context
        if ctx.correlation_id is None and remote.correlation_id is not None:
            ctx = ctx.replace(correlation_id=remote.correlation_id)
        check = None
        if remote.tenant is not None and ctx.tenant is not None and remote.tenant != ctx.tenant:
            check = _mismatch(self.name, ctx.tenant, remote.tenant)
        if check is None and not parsed.foreign:
            return ctx
        return Plan(ctx, check=check, received=parsed.foreign)

    def span_setup(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Context | None, tuple[Link, ...]]:
        """Continue the caller's trace (its ``traceparent``), if the carrier names one."""
        assert self.carrier is not None
        return _child_of(self.carrier(*args, **kwargs))


def _memoizable(cur: FlowContext, ctx: FlowContext) -> bool:
    """Only derivations that report nothing (no cross-tenant switch) may be replayed."""
    return cur.tenant is None or cur.tenant == ctx.tenant


def _mismatch(name: str, resolved: str, claimed: str) -> Callable[[], None]:
    def check() -> None:
        notify(
            EventKind.TENANT_MISMATCH,
            {"handler": name, "resolved_tenant": resolved, "carrier_tenant": claimed},
        )
        raise TenantMismatchError(
            f"handler {name!r}: the request headers name tenant {claimed!r} but the "
            f"credentials resolve to tenant {resolved!r}; refusing the request"
        )

    return check


def _child_of(carrier: Mapping[str, Any] | None) -> tuple[Context | None, tuple[Link, ...]]:
    remote = remote_parent(carrier)
    if remote is None:
        return None, ()
    return trace.set_span_in_context(NonRecordingSpan(remote)), ()
