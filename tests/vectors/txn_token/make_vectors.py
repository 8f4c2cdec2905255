"""Regenerate vectors.json with joserfc (not the library flowtrace uses), fixed keys and times.

Run: .venv/bin/python tests/vectors/txn_token/make_vectors.py  (then review the diff).
"""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

warnings.filterwarnings("ignore", message="EdDSA is deprecated")
T = 1_800_000_000
AUD = "trust.example"
# Fixed seeds below: the vectors are reproducible (these keys protect nothing).


def main() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    ed_private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    ec_private = ec.derive_private_key(0x1F2E3D4C5B6A79880123456789ABCDEF, ec.SECP256R1())
    ed = OKPKey.import_key(ed_private, parameters={"kid": "v-ed"})
    es = ECKey.import_key(ec_private, parameters={"kid": "v-es"})
    revoked = OKPKey.import_key(
        ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))),
        parameters={"kid": "v-revoked"},
    )
    base = {
        "iat": T,
        "exp": T + 60,
        "aud": AUD,
        "txn": "97053963-771d-49cc-a4e3-20aad399c312",
        "sub": "d084sdrt234fsaw34tr23t",
        "scope": "billing",
        "tctx": {
            "tenant": "acme",
            "user": "d084sdrt234fsaw34tr23t",
            "purpose": "billing",
            "region": "eu",
        },
        "rctx": {"req_ip": "69.151.72.123", "authn": "urn:ietf:rfc:6749", "req_wl": "apigw"},
    }
    ok_claims = {"txn": base["txn"], "tenant": "acme"}

    def sign(
        key: object, claims: dict, alg: str = "EdDSA", kid: str = "v-ed", typ: str = "txntoken+jwt"
    ) -> str:
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    good = sign(ed, base)
    head, body, sig = good.split(".")
    vectors = [
        {"name": "valid EdDSA", "token": good, "now": T + 10, "expect": "ok", "claims": ok_claims},
        {
            "name": "valid ES256",
            "token": sign(es, base, "ES256", "v-es"),
            "now": T + 10,
            "expect": "ok",
            "claims": ok_claims,
        },
        {
            "name": "valid within skew",
            "token": good,
            "now": T + 60 + 30,
            "expect": "ok",
            "claims": ok_claims,
        },
        {"name": "expired", "token": good, "now": T + 60 + 31, "expect": "TxnTokenExpiredError"},
        {
            "name": "other audience",
            "token": sign(ed, {**base, "aud": "other.example"}),
            "now": T + 10,
            "expect": "TxnTokenAudienceError",
        },
        {
            "name": "unknown kid",
            "token": sign(revoked, base, kid="v-revoked"),
            "now": T + 10,
            "expect": "UnknownTxnKeyError",
        },
        {
            "name": "ES256 header on an Ed25519 kid",
            "token": sign(es, base, "ES256", "v-ed"),
            "now": T + 10,
            "expect": "TxnTokenAlgorithmError",
        },
        {
            "name": "alg none",
            "token": base64.urlsafe_b64encode(b'{"alg":"none","kid":"v-ed","typ":"txntoken+jwt"}')
            .rstrip(b"=")
            .decode()
            + "."
            + body
            + ".",
            "now": T + 10,
            "expect": "TxnTokenAlgorithmError",
        },
        {
            "name": "signature of another payload",
            "token": head + "." + sign(ed, {**base, "txn": "other"}).split(".")[1] + "." + sig,
            "now": T + 10,
            "expect": "TxnTokenSignatureError",
        },
        {
            "name": "access token typ",
            "token": sign(ed, base, typ="at+jwt"),
            "now": T + 10,
            "expect": "MalformedTxnTokenError",
        },
        {
            "name": "missing txn",
            "token": sign(ed, {k: v for k, v in base.items() if k != "txn"}),
            "now": T + 10,
            "expect": "MalformedTxnTokenError",
        },
        {
            "name": "truncated",
            "token": good[:-21],
            "now": T + 10,
            "expect": "MalformedTxnTokenError",
        },
        {
            "name": "two parts",
            "token": head + "." + body,
            "now": T + 10,
            "expect": "MalformedTxnTokenError",
        },
    ]
    document = {
        "description": "Transaction tokens per draft-ietf-oauth-transaction-tokens-07, built "
        "with joserfc; verify with audience, leeway and each vector's now.",
        "audience": AUD,
        "leeway": 30,
        "jwks": {
            "keys": [
                {**ed.as_dict(private=False), "alg": "EdDSA"},
                {**es.as_dict(private=False), "alg": "ES256"},
            ]
        },
        "vectors": vectors,
    }
    out = Path(__file__).with_name("vectors.json")
    out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
