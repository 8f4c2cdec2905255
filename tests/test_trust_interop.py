"""Interop: flowtrace's tokens (PyJWT) verify with joserfc from the JWKS alone, and back.

joserfc warns that the ``EdDSA`` identifier is deprecated by RFC 9864 (in favour of
``Ed25519``); PyJWT does not know the new name yet, so the EdDSA cases silence exactly that
warning. ES256 needs no such allowance.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey

import flowtrace as ft

AUD = "trust.example"
VECTORS = Path(__file__).parent / "vectors" / "txn_token" / "vectors.json"


def _quiet() -> Any:
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.filterwarnings("ignore", category=SecurityWarning, message="EdDSA is deprecated")
    return context


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_flowtrace_tokens_verify_with_joserfc(alg: str) -> None:
    """joserfc, given only the published JWKS, verifies a flowtrace token and reads its claims."""
    signer = ft.trust.Signer.generate(kid=f"edge-{alg}", alg=alg)
    published = json.loads(json.dumps(ft.trust.jwks(signer)))  # what goes over the wire
    with ft.context(tenant="acme", user="u-1", purpose="billing", correlation_id="t-7"):
        token = ft.trust.mint(signer, audience=AUD)
    context = _quiet()
    try:
        decoded = jose_jwt.decode(token, KeySet.import_key_set(published), algorithms=[alg])
    finally:
        context.__exit__(None, None, None)
    assert decoded.header["typ"] == "txntoken+jwt"
    assert decoded.header["kid"] == f"edge-{alg}"
    claims = decoded.claims
    assert (claims["txn"], claims["aud"], claims["tctx"]["tenant"]) == ("t-7", AUD, "acme")
    jose_jwt.JWTClaimsRegistry(aud={"essential": True, "value": AUD}).validate(claims)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_joserfc_tokens_verify_with_flowtrace(alg: str) -> None:
    """A token joserfc builds to the draft's claims verifies in flowtrace from its JWKS."""
    import time

    if alg == "EdDSA":
        key: Any = OKPKey.generate_key("Ed25519", parameters={"kid": "peer-1"})
    else:
        key = ECKey.generate_key("P-256", parameters={"kid": "peer-1"})
    now = int(time.time())
    claims = {
        "iat": now,
        "exp": now + 60,
        "aud": AUD,
        "txn": "peer-txn",
        "sub": "u-9",
        "scope": "support",
        "tctx": {"tenant": "globex", "user": "u-9", "purpose": "support"},
        "rctx": {"req_wl": "apigw", "authn": "urn:mfa"},
    }
    context = _quiet()
    try:
        token = jose_jwt.encode(
            {"alg": alg, "kid": "peer-1", "typ": "txntoken+jwt"}, claims, key, algorithms=[alg]
        )
    finally:
        context.__exit__(None, None, None)
    jwks = {"keys": [key.as_dict(private=False)]}
    result = ft.trust.Verifier(jwks, audience=AUD).verify(token)
    assert (result.txn, result.tenant, result.user, result.scope) == (
        "peer-txn",
        "globex",
        "u-9",
        "support",
    )
    assert result.request_context == {"req_wl": "apigw", "authn": "urn:mfa"}


def test_checked_in_vectors() -> None:
    """Each vector (joserfc-built, per the draft's claims) meets its expected result."""
    document = json.loads(VECTORS.read_text())
    assert len(document["vectors"]) >= 8
    for vector in document["vectors"]:
        verifier = ft.trust.Verifier(
            document["jwks"],
            audience=document["audience"],
            leeway=document["leeway"],
            clock=lambda now=float(vector["now"]): now,
        )
        expected = vector["expect"]
        if expected == "ok":
            result = verifier.verify(vector["token"])
            assert {"txn": result.txn, "tenant": result.tenant} == vector["claims"], vector["name"]
        else:
            with pytest.raises(getattr(ft.errors, expected)):
                verifier.verify(vector["token"])
