"""Minting transaction tokens from the flow context (draft-ietf-oauth-transaction-tokens)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Final

from ..errors import ConfigError, MissingTenantError
from ..flowcontext import FlowContext, current
from ._jose import jwt
from ._keys import Signer

__all__ = ["HEADER", "TYP", "mint"]

HEADER: Final = "txn-token"
"""The carrier key holding the token (the draft's ``Txn-Token`` HTTP header, lower-cased).

Example::

    import flowtrace as ft

    assert ft.trust.HEADER == "txn-token"
"""

TYP: Final = "txntoken+jwt"
"""The JWS ``typ`` of a transaction token: an access or ID token is not accepted as one.

Example::

    import flowtrace as ft

    assert ft.trust.TYP == "txntoken+jwt"
"""

_MAX_TTL: Final = 3600.0


def mint(
    signer: Signer,
    *,
    audience: str,
    ttl: float = 60.0,
    context: FlowContext | None = None,
    sub: str | None = None,
    request_context: Mapping[str, Any] | None = None,
    parent: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """Mint a transaction token for the flow context (``current()`` unless given).

    Call it at the edge, *after* the application verified the external credential.
    ``txn`` is the context's correlation id (a new one when it has none), ``sub`` the user
    (or ``tenant:<tenant>`` for work on no user's behalf), ``scope`` the purpose, ``aud``
    the trust domain; tenant, user, purpose and region travel in ``tctx``, the request
    context (``req_ip``, ``authn``, ``req_wl``...) in ``rctx``. ``parent`` (the claims of
    a verified token) re-mints a narrowed token: same ``txn``, the chain in ``tctx.chain``.

    Example::

        import flowtrace as ft

        signer = ft.trust.Signer.generate(kid="edge-1")
        with ft.context(tenant="acme", user="u-1", purpose="billing", correlation_id="t-1"):
            token = ft.trust.mint(signer, audience="trust.example", ttl=30)
        claims = ft.trust.Verifier(ft.trust.jwks(signer), audience="trust.example").verify(token)
        assert (claims.txn, claims.tenant, claims.scope) == ("t-1", "acme", "billing")
    """
    if not isinstance(audience, str) or not audience:
        raise ConfigError("mint(audience=...) names the trust domain, a non-empty string")
    if not 0 < ttl <= _MAX_TTL:
        raise ConfigError(f"mint(ttl=...) must be in (0, {_MAX_TTL:.0f}] seconds, got {ttl}")
    ctx = current() if context is None else context
    tenant = ctx.tenant
    if tenant is None:
        raise MissingTenantError(
            "mint: the flow context has no tenant; mint inside ft.context(tenant=...) after "
            "verifying the caller's credential"
        )
    issued = int(time.time() if now is None else now)
    txn = ctx.correlation_id
    chain: list[str] = []
    if parent is not None:
        txn = str(parent["txn"])  # a narrowing keeps the transaction it belongs to
        parent_tctx = parent.get("tctx") or {}
        chain = [*parent_tctx.get("chain", ()), str(parent.get("jti", ""))]
    tctx: dict[str, Any] = {"tenant": tenant}
    for field in ("user", "purpose", "region"):
        value = getattr(ctx, field)
        if value is not None:
            tctx[field] = value
    if chain:
        tctx["chain"] = chain
    claims: dict[str, Any] = {
        "iat": issued,
        "exp": issued + max(1, int(ttl)),
        "aud": audience,
        "txn": txn or uuid.uuid4().hex,
        "jti": uuid.uuid4().hex,
        "sub": sub or ctx.user or f"tenant:{tenant}",
        "tctx": tctx,
    }
    if ctx.purpose is not None:
        claims["scope"] = ctx.purpose
    if request_context:
        claims["rctx"] = dict(request_context)
    token: str = jwt().encode(
        claims, signer.key(), algorithm=signer.alg, headers={"kid": signer.kid, "typ": TYP}
    )
    return token
