"""Verifying transaction tokens: one verifier per trust domain, results cached per token."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import (
    ConfigError,
    MalformedTxnTokenError,
    TxnTokenAlgorithmError,
    TxnTokenAudienceError,
    TxnTokenContextError,
    TxnTokenExpiredError,
    TxnTokenSignatureError,
    UnknownTxnKeyError,
)
from ..flowcontext import FlowContext
from ._jose import jwt
from ._keys import ALGORITHMS, PublicKey, public_keys
from ._mint import TYP

__all__ = ["MAX_SKEW", "TxnToken", "Verifier"]

MAX_SKEW: Final = 300.0
"""The largest clock skew a verifier may allow, in seconds.

Example::

    import flowtrace as ft

    verifier = ft.trust.Verifier({"keys": []}, audience="d", leeway=ft.trust.MAX_SKEW)
"""

_MAX_TOKEN: Final = 8192
_REQUIRED: Final = ("iat", "exp", "aud", "txn", "sub", "tctx")


@dataclass(frozen=True)
class TxnToken:
    """The verified claims of a transaction token.

    ``expired_in_queue`` is true when the token expired but was accepted under the
    verifier's ``max_queue_age`` policy (a hop records that in its audit trail).

    Example::

        import flowtrace as ft

        signer = ft.trust.Signer.generate(kid="k1")
        with ft.context(tenant="acme", user="u-1"):
            token = ft.trust.mint(signer, audience="trust.example")
        claims = ft.trust.Verifier(ft.trust.jwks(signer), audience="trust.example").verify(token)
        assert (claims.tenant, claims.user, claims.kid) == ("acme", "u-1", "k1")
    """

    txn: str
    sub: str
    audience: str
    issued_at: int
    expires_at: int
    kid: str
    tenant: str
    user: str | None = None
    purpose: str | None = None
    region: str | None = None
    scope: str | None = None
    request_context: Mapping[str, Any] = field(default_factory=dict)
    chain: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)
    expired_in_queue: bool = False

    def context(self) -> FlowContext:
        """The flow context these claims vouch for.

        Example::

            import flowtrace as ft

            signer = ft.trust.Signer.generate(kid="k1")
            with ft.context(tenant="acme", region="eu"):
                token = ft.trust.mint(signer, audience="d")
            claims = ft.trust.Verifier(ft.trust.jwks(signer), audience="d").verify(token)
            assert claims.context().region == "eu"
        """
        return FlowContext(
            tenant=self.tenant,
            user=self.user,
            purpose=self.purpose,
            region=self.region,
            correlation_id=self.txn,
        )


class Verifier:
    """Verifies transaction tokens of one trust domain against a JWKS.

    Checks, in order, each failure a :class:`~flowtrace.errors.TxnTokenError` subclass:
    the compact form and ``typ`` (malformed), ``alg`` in the allow-list and equal to the
    algorithm of the key ``kid`` names (no ``none``, no HS/RS swaps), the ``kid`` (unknown
    or revoked), the signature, ``aud``, then ``exp``/``iat`` with ``leeway`` seconds of
    skew (at most :data:`MAX_SKEW`). An expired token is accepted only when
    ``max_queue_age`` is set and the token was issued at most that long ago; the result
    then says ``expired_in_queue``. Verified results are cached per token string
    (``cache_size`` entries), so a batch carrying one token verifies it once; expiry is
    still checked on every hit, and :meth:`update`/:meth:`revoke` empty the cache.

    Thread-safe: the cache is a dict updated with single operations.

    Example::

        import flowtrace as ft

        old, new = ft.trust.Signer.generate(kid="k1"), ft.trust.Signer.generate(kid="k2")
        verifier = ft.trust.Verifier(ft.trust.jwks(old, new), audience="trust.example")
        with ft.context(tenant="acme"):
            token = ft.trust.mint(old, audience="trust.example")
        assert verifier.verify(token).kid == "k1"
        verifier.revoke("k1")                              # rotation finished
    """

    def __init__(
        self,
        jwks: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        *,
        audience: str,
        leeway: float = 30.0,
        max_queue_age: float | None = None,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(audience, str) or not audience:
            raise ConfigError("Verifier(audience=...) names the trust domain")
        if not 0 <= leeway <= MAX_SKEW:
            raise ConfigError(f"Verifier(leeway=...) must be in [0, {MAX_SKEW:.0f}] seconds")
        if max_queue_age is not None and not 0 < max_queue_age <= 7 * 86400:
            raise ConfigError("Verifier(max_queue_age=...) must be in (0, 7 days] seconds")
        if cache_size < 0:
            raise ConfigError("Verifier(cache_size=...) must be >= 0")
        self.audience = audience
        self.leeway = leeway
        self.max_queue_age = max_queue_age
        self._clock = clock
        self._cache_size = cache_size
        self._cache: dict[str, TxnToken] = {}
        self._keys: dict[str, tuple[str, PublicKey]] = public_keys(jwks)
        self._jwt = jwt()

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids this verifier trusts now.

        Example::

            import flowtrace as ft

            verifier = ft.trust.Verifier({"keys": []}, audience="d")
            assert verifier.kids == ()
        """
        return tuple(self._keys)

    def update(self, jwks: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Trust exactly the keys of ``jwks`` from now on (a rotation step).

        Example::

            import flowtrace as ft

            verifier = ft.trust.Verifier({"keys": []}, audience="d")
            verifier.update(ft.trust.jwks(ft.trust.Signer.generate(kid="k2")))
            assert verifier.kids == ("k2",)
        """
        keys = public_keys(jwks)
        self._keys = keys
        self._cache.clear()

    def revoke(self, kid: str) -> None:
        """Stop trusting ``kid``; tokens it signed are refused, cached results included.

        Example::

            import flowtrace as ft

            signer = ft.trust.Signer.generate(kid="k1")
            verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience="d")
            verifier.revoke("k1")
            assert verifier.kids == ()
        """
        keys = dict(self._keys)
        keys.pop(kid, None)
        self._keys = keys
        self._cache.clear()

    def verify(self, token: str, *, context: FlowContext | None = None) -> TxnToken:
        """The verified claims of ``token``, or the :class:`TxnTokenError` saying why not.

        With ``context`` (the flow context the baggage claims), its tenant must equal the
        token's, and its user too when it names one
        (:class:`~flowtrace.errors.TxnTokenContextError` otherwise).

        Example::

            import flowtrace as ft

            signer = ft.trust.Signer.generate(kid="k1")
            verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience="d")
            with ft.context(tenant="acme"):
                token = ft.trust.mint(signer, audience="d")
            assert verifier.verify(token) is verifier.verify(token)   # cached
        """
        hit = self._cache.get(token) if type(token) is str else None
        if hit is not None:
            return _matching(self._fresh(hit), context)
        result = self._verify(token)
        cache = self._cache
        if self._cache_size:
            if len(cache) >= self._cache_size:
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                    del cache[next(iter(cache))]  # oldest first (racing threads: best effort)
            cache[token] = result
        return _matching(self._fresh(result), context)

    def _fresh(self, result: TxnToken) -> TxnToken:
        now = self._clock()
        if result.issued_at > now + self.leeway:
            raise TxnTokenExpiredError(
                f"Txn-Token for txn {result.txn!r} is issued {result.issued_at - now:.0f} s in "
                "the future; check the clocks of the minting service"
            )
        late = now - self.leeway - result.expires_at
        if late <= 0:
            return result
        age = now - result.issued_at
        if self.max_queue_age is not None and age <= self.max_queue_age:
            if result.expired_in_queue:
                return result
            return _replace(result, expired_in_queue=True)
        raise TxnTokenExpiredError(
            f"Txn-Token for txn {result.txn!r} expired {late:.0f} s ago (beyond the "
            f"{self.leeway:.0f} s skew); replayed or queued too long — mint a new one at the "
            "edge, or declare Verifier(max_queue_age=...) for queues"
        )

    def _verify(self, token: object) -> TxnToken:
        module = self._jwt
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            raise MalformedTxnTokenError(
                f"a Txn-Token is a compact JWS string of at most {_MAX_TOKEN} characters"
            )
        if token.count(".") != 2:
            raise MalformedTxnTokenError(
                "the Txn-Token is not a compact JWS (three dot-separated parts); truncated?"
            )
        try:
            header = module.get_unverified_header(token)
        except module.exceptions.PyJWTError as exc:
            raise MalformedTxnTokenError(f"the Txn-Token header is unreadable: {exc}") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TxnTokenAlgorithmError(
                f"Txn-Token alg {alg!r} is not allowed (only {', '.join(ALGORITHMS)}); "
                "refusing (alg none and HS/RS confusion are attacks)"
            )
        if header.get("typ") != TYP:
            raise MalformedTxnTokenError(
                f"typ {header.get('typ')!r} is not {TYP!r}: not a transaction token"
            )
        kid = header.get("kid")
        entry = self._keys.get(kid) if isinstance(kid, str) else None
        if entry is None:
            raise UnknownTxnKeyError(
                f"Txn-Token kid {kid!r} is not in the verifier's JWKS (unknown or revoked); "
                "publish the signer's key or re-mint with a current key"
            )
        key_alg, key = entry
        if alg != key_alg:
            raise TxnTokenAlgorithmError(
                f"Txn-Token alg {alg!r} does not match key {kid!r} ({key_alg}): key confusion"
            )
        try:
            claims = module.decode(
                token,
                key,
                algorithms=[key_alg],
                audience=self.audience,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": list(_REQUIRED),
                },
            )
        except module.exceptions.InvalidSignatureError as exc:
            raise TxnTokenSignatureError(
                f"Txn-Token signature does not verify with key {kid!r}: edited or forged"
            ) from exc
        except module.exceptions.InvalidAudienceError as exc:
            raise TxnTokenAudienceError(
                f"Txn-Token is not for trust domain {self.audience!r} ({exc}); refusing"
            ) from exc
        except module.exceptions.InvalidAlgorithmError as exc:
            raise TxnTokenAlgorithmError(f"Txn-Token algorithm refused: {exc}") from exc
        except module.exceptions.PyJWTError as exc:
            raise MalformedTxnTokenError(f"Txn-Token refused: {exc}") from exc
        return _claims(claims, kid)


def _matching(result: TxnToken, context: FlowContext | None) -> TxnToken:
    if context is None:
        return result
    if context.tenant != result.tenant:
        raise TxnTokenContextError(
            f"the baggage names tenant {context.tenant!r} but the Txn-Token (txn "
            f"{result.txn!r}) vouches for tenant {result.tenant!r}; refusing (forged baggage)"
        )
    if context.user is not None and context.user != result.user:
        raise TxnTokenContextError(
            f"the baggage names user {context.user!r} but the Txn-Token (txn {result.txn!r}) "
            f"vouches for user {result.user!r}; refusing (forged baggage)"
        )
    return result


def _claims(claims: Mapping[str, Any], kid: str) -> TxnToken:
    tctx = claims["tctx"]
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(tctx, Mapping) or not isinstance(tctx.get("tenant"), str):
        raise MalformedTxnTokenError("Txn-Token tctx must be an object naming the tenant")
    if type(iat) is not int or type(exp) is not int or exp < iat:
        raise MalformedTxnTokenError("Txn-Token iat/exp must be integers with exp >= iat")
    if not isinstance(claims["txn"], str) or not isinstance(claims["sub"], str):
        raise MalformedTxnTokenError("Txn-Token txn and sub must be strings")
    rctx = claims.get("rctx") or {}
    chain = tctx.get("chain") or ()

    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    return TxnToken(
        txn=claims["txn"],
        sub=claims["sub"],
        audience=str(claims["aud"]),
        issued_at=iat,
        expires_at=exp,
        kid=kid,
        tenant=tctx["tenant"],
        user=text(tctx.get("user")),
        purpose=text(tctx.get("purpose")),
        region=text(tctx.get("region")),
        scope=text(claims.get("scope")),
        request_context=dict(rctx) if isinstance(rctx, Mapping) else {},
        chain=tuple(str(item) for item in chain) if isinstance(chain, list) else (),
        claims=dict(claims),
    )


def _replace(result: TxnToken, **changes: Any) -> TxnToken:
    return dataclasses.replace(result, **changes)
