"""Transaction-token checks for ``@handler(trust=...)`` / ``@consumer(trust=...)``.

The decorators do not import :mod:`flowtrace.trust`: they take any object with the
``flowtrace.propagation.TokenVerifier`` shape (``flowtrace.trust.Verifier`` is one), so
layers only look down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ..errors import ConfigError, MissingTxnTokenError, TxnTokenError
from ..flowcontext import EventKind, FlowContext, notify
from ..propagation import TokenVerifier, token_in
from ._instrument import Plan

__all__ = ["Trust", "TrustCheck"]

Trust = Literal["required", "optional"]
"""``required``: refuse calls without a valid token; ``optional``: verify when present."""


class TrustCheck:
    """Wraps a decorator's ``prepare``: verify the token against the resolved context."""

    __slots__ = ("carrier", "dead_letter", "hop", "mode", "prepare", "verifier")

    def __init__(
        self,
        hop: str,
        mode: Trust,
        verifier: TokenVerifier | None,
        prepare: Callable[[tuple[Any, ...], dict[str, Any]], FlowContext | Plan],
        carrier: Callable[[tuple[Any, ...], dict[str, Any]], Any],
        dead_letter: Callable[..., Any] | None = None,
    ) -> None:
        if mode not in ("required", "optional"):
            raise ConfigError(f"{hop!r}: trust= takes 'required' or 'optional', got {mode!r}")
        if verifier is None or not callable(getattr(verifier, "verify", None)):
            raise ConfigError(
                f"{hop!r}: trust={mode!r} needs verifier=flowtrace.trust.Verifier(jwks, "
                "audience=...) (an object with verify(token, context=...))"
            )
        self.hop = hop
        self.mode = mode
        self.verifier = verifier
        self.prepare = prepare
        self.carrier = carrier
        self.dead_letter = dead_letter

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowContext | Plan:
        prepared = self.prepare(args, kwargs)
        if isinstance(prepared, Plan):
            if prepared.check is not None or prepared.substitute is not None:
                return prepared  # already refused (missing tenant, mismatch...)
            ctx, received = prepared.ctx, prepared.received
        else:
            ctx, received = prepared, ()
        try:
            raw = self.carrier(args, kwargs)
        except TypeError:
            raw = None
        token = token_in(raw) if raw else None
        if token is None:
            if self.mode == "optional":
                note: dict[str, str | bool | None] = {"hop": self.hop, "status": "absent"}
                return Plan(ctx, check=_report(EventKind.TXN_TOKEN, note), received=received)
            error = MissingTxnTokenError(
                f"{self.hop!r} requires a Txn-Token (trust='required') and the call carries "
                "none; mint one at the edge (flowtrace.trust.mint) and inject it with "
                "flowtrace.inject(headers, txn_token=...)"
            )
            return self._refuse(ctx, "missing", error)
        try:
            claims = self.verifier.verify(token, context=ctx)
        except TxnTokenError as exc:
            return self._refuse(ctx, type(exc).__name__, exc)
        if getattr(claims, "expired_in_queue", False):
            note = {
                "hop": self.hop,
                "status": "expired_in_queue",
                "txn": str(getattr(claims, "txn", "")),
                "kid": str(getattr(claims, "kid", "")),
            }
            return Plan(ctx, check=_report(EventKind.TXN_TOKEN, note), received=received)
        return Plan(ctx, received=received) if received else ctx

    def _refuse(self, ctx: FlowContext, reason: str, error: Exception) -> Plan:
        facts: dict[str, str | bool | None] = {"hop": self.hop, "reason": reason}
        if self.dead_letter is None:
            facts["dead_lettered"] = False
            return Plan(ctx, check=_report(EventKind.TXN_TOKEN_REFUSED, facts, error))
        facts["dead_lettered"] = True
        return Plan(
            ctx, check=_report(EventKind.TXN_TOKEN_REFUSED, facts), substitute=self.dead_letter
        )


def _report(
    kind: str, facts: dict[str, str | bool | None], error: Exception | None = None
) -> Callable[[], None]:
    attributes = {key: value for key, value in facts.items() if value is not None}

    def check() -> None:
        notify(kind, attributes)
        if error is not None:
            raise error

    return check
