"""The attacker's view: every forged, replayed, confused or broken token is refused.

Each attack is written as the attacker would: with what they can get (a valid token of
their own tenant, an old token, the public JWKS, a revoked key, the ability to write
baggage). The suite counts the refusals and asserts 100 %.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

import flowtrace as ft
from flowtrace.errors import TxnTokenError

AUD = "trust.example"
T0 = 1_800_000_000.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, object], dict[str, object]]:
    return pyjwt.get_unverified_header(token), pyjwt.decode(
        token, options={"verify_signature": False}
    )


def test_attack_suite_is_refused_completely() -> None:
    """Every attack raises a TxnTokenError subclass; none yields a context."""
    edge = ft.trust.Signer.generate(kid="edge-1")
    ec_edge = ft.trust.Signer.generate(kid="edge-ec", alg="ES256")
    retired = ft.trust.Signer.generate(kid="edge-0")
    now = {"t": T0 + 5}
    verifier = ft.trust.Verifier(
        ft.trust.jwks(edge, ec_edge, retired), audience=AUD, clock=lambda: now["t"]
    )
    with ft.context(tenant="globex", user="mallory", correlation_id="t-m"):
        own = ft.trust.mint(edge, audience=AUD, now=T0)  # the attacker's legitimate token
        old_token = ft.trust.mint(retired, audience=AUD, now=T0)
        other_aud = ft.trust.mint(edge, audience="partner.example", now=T0)
    verifier.revoke("edge-0")  # rotated out (e.g. after a leak)
    header, claims = _parts(own)
    public_raw = edge.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    public_pem = edge.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head, body, sig = own.split(".")

    def forged_body(**changes: object) -> str:
        edited = {**claims, **changes}
        return ".".join((head, _b64(json.dumps(edited).encode()), sig))

    def hs256(secret: bytes, kid: str = "edge-1") -> str:
        # PyJWT itself refuses HMAC keys that look like public keys, so build the JWS by hand
        # as an attacker would.
        import hashlib
        import hmac

        h = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "txntoken+jwt"}).encode())
        p = _b64(json.dumps(claims).encode())
        mac = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
        return f"{h}.{p}.{_b64(mac)}"

    attacks: dict[str, Callable[[], object]] = {
        # forged tenant in baggage, valid token for another tenant
        "baggage says acme, token says globex": lambda: verifier.verify(
            own, context=ft.FlowContext(tenant="acme")
        ),
        "baggage user swapped": lambda: verifier.verify(
            own, context=ft.FlowContext(tenant="globex", user="alice")
        ),
        "tenant edited in the payload": lambda: verifier.verify(
            forged_body(tctx={"tenant": "acme", "user": "mallory"})
        ),
        "audience edited in the payload": lambda: verifier.verify(forged_body(aud=AUD + ".")),
        "exp extended in the payload": lambda: verifier.verify(forged_body(exp=T0 + 10**6)),
        "replay after expiry": lambda: (now.update(t=T0 + 3600), verifier.verify(own))[1],
        "token for another audience": lambda: verifier.verify(other_aud),
        "alg none, no signature": lambda: verifier.verify(
            _b64(b'{"alg":"none","kid":"edge-1","typ":"txntoken+jwt"}') + "." + body + "."
        ),
        "alg None (case)": lambda: verifier.verify(
            _b64(b'{"alg":"None","kid":"edge-1","typ":"txntoken+jwt"}') + "." + body + "."
        ),
        "HS256 keyed with the raw public key": lambda: verifier.verify(hs256(public_raw)),
        "HS256 keyed with the public PEM": lambda: verifier.verify(hs256(public_pem)),
        "RS256 header": lambda: verifier.verify(
            _b64(b'{"alg":"RS256","kid":"edge-1","typ":"txntoken+jwt"}') + "." + body + "." + sig
        ),
        "ES256 header on the Ed25519 kid": lambda: verifier.verify(
            pyjwt.encode(
                claims,
                ec_edge.key(),
                algorithm="ES256",
                headers={"kid": "edge-1", "typ": "txntoken+jwt"},
            )
        ),
        "signed by the attacker's own key, victim kid": lambda: verifier.verify(
            pyjwt.encode(
                claims,
                ft.trust.Signer.generate(kid="x").key(),
                algorithm="EdDSA",
                headers={"kid": "edge-1", "typ": "txntoken+jwt"},
            )
        ),
        "embedded jwk header": lambda: verifier.verify(
            pyjwt.encode(
                claims,
                ft.trust.Signer.generate(kid="x").key(),
                algorithm="EdDSA",
                headers={
                    "typ": "txntoken+jwt",
                    "jwk": ft.trust.Signer.generate(kid="x").public_jwk(),
                },
            )
        ),
        "revoked key": lambda: verifier.verify(old_token),
        "truncated": lambda: verifier.verify(own[: len(own) // 2]),
        "signature truncated": lambda: verifier.verify(own[:-10]),
        "garbled byte": lambda: verifier.verify(
            own[:40] + ("A" if own[40] != "A" else "B") + own[41:]
        ),
        "empty": lambda: verifier.verify(""),
        "not a string": lambda: verifier.verify(b"abc"),  # type: ignore[arg-type]
        "huge": lambda: verifier.verify("a." * 10_000 + "b"),
        "access token typ": lambda: verifier.verify(
            pyjwt.encode(
                claims, edge.key(), algorithm="EdDSA", headers={"kid": "edge-1", "typ": "at+jwt"}
            )
        ),
    }
    # control: the attacker's own token, with its own baggage, does verify
    assert (
        verifier.verify(own, context=ft.FlowContext(tenant="globex", user="mallory")).txn == "t-m"
    )
    refused, accepted = [], []
    for name, attack in attacks.items():
        now["t"] = T0 + 5
        try:
            attack()
        except TxnTokenError:
            refused.append(name)
        else:
            accepted.append(name)
    assert header["kid"] == "edge-1"
    assert accepted == []
    assert len(refused) == len(attacks) == 23
