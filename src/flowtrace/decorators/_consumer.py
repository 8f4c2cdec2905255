"""Per-decoration state of ``@flowtrace.consumer``: find headers, extract, refuse."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Link

from ..errors import ContextPropagationError, MissingTenantError, TenantNotAllowedError
from ..flowcontext import EMPTY, EventKind, FlowContext, notify
from ..propagation import (
    BAGGAGE_HEADER,
    W3C_KEYS,
    decoded,
    extract_parsed,
    find_headers,
    headers_at,
    is_mapping,
    remote_parent,
)
from ._instrument import Plan

__all__ = ["ConsumerSpec", "HeadersSource"]

HeadersSource = str | Callable[..., "Mapping[str, Any] | None"]
"""An attribute/key name, or a callable receiving the call's arguments and returning headers.

Example::

    import flowtrace as ft

    @ft.consumer(headers=lambda body, meta: meta["headers"])   # a callable source
    def on_event(body, meta):
        return ft.require_tenant()

    with ft.context(tenant="acme"):
        meta = {"headers": ft.inject({})}
    assert on_event(b"{}", meta) == "acme"
"""


class ConsumerSpec:
    __slots__ = ("allowed", "headers", "name", "on_missing")

    def __init__(
        self,
        name: str,
        headers: HeadersSource,
        on_missing: Callable[..., Any] | None,
        allowed_tenants: Iterable[str] | None,
        func: Callable[..., Any] | None = None,
    ) -> None:
        if not (isinstance(headers, str) or callable(headers)):
            raise TypeError("consumer(headers=...) takes an attribute name or a callable")
        if isinstance(headers, str) and "." in headers and func is not None:
            headers = headers_at(func, headers)  # "message.headers": one named parameter
        if isinstance(allowed_tenants, str):
            raise TypeError(
                "consumer(allowed_tenants=...) takes a collection of tenants, not a str"
            )
        self.name = name
        self.headers = headers
        self.on_missing = on_missing
        self.allowed = frozenset(allowed_tenants) if allowed_tenants is not None else None

    def carrier(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        headers = self.headers
        if type(headers) is str:
            return find_headers(args, kwargs, headers)
        return headers(*args, **kwargs)  # type: ignore[operator]

    def prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext | Plan:
        headers = self.headers  # a consumer without headers is a coding error (TypeError)
        if type(headers) is str:
            raw = find_headers(args, kwargs, headers)
        else:
            raw = headers(*args, **kwargs)  # type: ignore[operator]
        try:
            # Mappings and multi-value header objects (werkzeug, multidict...) alike;
            # anything else is a coding error (TypeError from the parser).
            parsed = extract_parsed(raw) if raw else None
        except ContextPropagationError as exc:
            return self._refuse(EMPTY, "malformed_headers", exc)
        ctx = EMPTY if parsed is None else parsed.context
        tenant = ctx.tenant
        if tenant is None:
            error = MissingTenantError(
                f"consumer {self.name!r} refused a message without a tenant in its headers; "
                "inject the flow context on the producer side (flowtrace.inject) or pass "
                "on_missing= to dead-letter such messages"
            )
            return self._refuse(ctx, "missing_tenant", error)
        if self.allowed is not None and tenant not in self.allowed:
            refused = TenantNotAllowedError(
                f"consumer {self.name!r} does not accept tenant {tenant!r}; "
                "add it to allowed_tenants if this is intended"
            )
            return Plan(
                ctx, check=_refusal(self.name, "tenant_not_allowed", refused, dead_lettered=False)
            )
        if parsed is not None and parsed.foreign:
            return Plan(ctx, received=parsed.foreign)  # forwarded by inject in the body
        return ctx

    def fast_prepare(self) -> Callable[[tuple[Any, ...], dict[str, Any]], FlowContext | Plan]:
        """``prepare`` with a shortcut for the common case, falling back to it otherwise.

        Shortcut: one message argument (not a mapping) whose ``headers`` attribute is a
        dict of W3C keys only, whose baggage string was parsed before (holding flowtrace
        members only), naming an allowed tenant.
        It returns exactly what :meth:`prepare` would; anything else goes to :meth:`prepare`.
        """
        key = self.headers
        slow = self.prepare
        if type(key) is not str:
            return slow
        allowed = self.allowed
        decoded_memo = decoded
        w3c = W3C_KEYS

        def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext | Plan:
            if len(args) == 1 and not kwargs:
                arg = args[0]
                kind = type(arg)
                raw = getattr(arg, key, None) if kind is not dict else None
                if type(raw) is dict and not is_mapping(kind):
                    header = raw.get(BAGGAGE_HEADER)
                    size = len(raw)
                    # Only W3C keys (so no other spelling of "baggage"); cheapest checks first.
                    if type(header) is str and (
                        size == 1 or (size == 2 and "traceparent" in raw) or raw.keys() <= w3c
                    ):
                        ctx = decoded_memo.get(header)
                        if ctx is not None:
                            tenant = ctx.tenant
                            if tenant is not None and (allowed is None or tenant in allowed):
                                return ctx
            return slow(args, kwargs)

        return prepare

    def _refuse(self, ctx: FlowContext, reason: str, error: Exception) -> Plan:
        if self.on_missing is None:
            return Plan(ctx, check=_refusal(self.name, reason, error, dead_lettered=False))
        return Plan(
            ctx,
            check=_refusal(self.name, reason, None, dead_lettered=True),
            substitute=self.on_missing,
        )

    def span_setup(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Context | None, tuple[Link, ...]]:
        """A new trace, linked to the producer's span: never the consuming thread's span."""
        try:
            raw = self.carrier(args, kwargs)
        except TypeError:
            raw = None
        remote = remote_parent(raw) if raw else None
        return Context(), ((Link(remote),) if remote is not None else ())


def _refusal(
    name: str, reason: str, error: Exception | None, *, dead_lettered: bool
) -> Callable[[], None]:
    def check() -> None:
        notify(
            EventKind.MESSAGE_REFUSED,
            {"consumer": name, "reason": reason, "dead_lettered": dead_lettered},
        )
        if error is not None:
            raise error

    return check
