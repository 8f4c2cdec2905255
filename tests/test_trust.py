"""Transaction tokens (flowtrace.trust): mint, verify, keys, rotation, cache."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace.errors import (
    ConfigError,
    MalformedTxnTokenError,
    MissingTenantError,
    TrustKeyError,
    TxnTokenAlgorithmError,
    TxnTokenAudienceError,
    TxnTokenExpiredError,
    TxnTokenSignatureError,
    UnknownTxnKeyError,
)

AUD = "trust.example"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def signer() -> ft.trust.Signer:
    return ft.trust.Signer.generate(kid="edge-1")


def _mint(signer: ft.trust.Signer, **kw: object) -> str:
    with ft.context(
        tenant="acme", user="u-1", purpose="billing", region="eu", correlation_id="txn-1"
    ):
        return ft.trust.mint(signer, audience=AUD, now=T0, **kw)  # type: ignore[arg-type]


def test_claims_follow_the_draft(signer: ft.trust.Signer) -> None:
    """txn = correlation id, sub = user, scope = purpose, aud = trust domain, typ and kid set."""
    token = _mint(signer, ttl=30, request_context={"req_ip": "10.0.0.1", "authn": "oidc"})
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": "edge-1", "typ": "txntoken+jwt"}
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["txn"] == "txn-1"
    assert claims["sub"] == "u-1"
    assert claims["scope"] == "billing"
    assert claims["aud"] == AUD
    assert claims["exp"] - claims["iat"] == 30
    assert claims["tctx"] == {"tenant": "acme", "user": "u-1", "purpose": "billing", "region": "eu"}
    assert claims["rctx"] == {"req_ip": "10.0.0.1", "authn": "oidc"}


def test_verified_claims_give_back_the_context(signer: ft.trust.Signer) -> None:
    """What verifies is the flow context that was minted."""
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, clock=Clock())
    result = verifier.verify(_mint(signer))
    ctx = result.context()
    assert (ctx.tenant, ctx.user, ctx.purpose, ctx.region, ctx.correlation_id) == (
        "acme",
        "u-1",
        "billing",
        "eu",
        "txn-1",
    )


def test_sub_without_a_user_names_the_tenant(signer: ft.trust.Signer) -> None:
    """Work on no user's behalf (a batch) carries sub = tenant:<tenant>."""
    with ft.context(tenant="acme"):
        token = ft.trust.mint(signer, audience=AUD)
    assert pyjwt.decode(token, options={"verify_signature": False})["sub"] == "tenant:acme"


def test_mint_refuses_without_a_tenant_or_with_bad_options(signer: ft.trust.Signer) -> None:
    """No tenant, no audience, an absurd ttl: refused before anything is signed."""
    with pytest.raises(MissingTenantError):
        ft.trust.mint(signer, audience=AUD)
    with ft.context(tenant="acme"):
        with pytest.raises(ConfigError):
            ft.trust.mint(signer, audience="")
        with pytest.raises(ConfigError):
            ft.trust.mint(signer, audience=AUD, ttl=0)
        with pytest.raises(ConfigError):
            ft.trust.mint(signer, audience=AUD, ttl=86400)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_keys_from_pem_file_and_callable(tmp_path: object, alg: str) -> None:
    """A PEM file and a loader callable sign tokens the published JWKS verifies."""
    from pathlib import Path

    original = ft.trust.Signer.generate(kid="k1", alg=alg)
    path = Path(str(tmp_path)) / "key.pem"
    path.write_bytes(original.private_pem())
    verifier = ft.trust.Verifier(ft.trust.jwks(original), audience=AUD)
    for signer in (
        ft.trust.Signer.from_pem(path, kid="k1"),
        ft.trust.Signer.from_callable(lambda: path.read_bytes(), kid="k1"),
    ):
        assert signer.alg == alg
        with ft.context(tenant="acme"):
            assert verifier.verify(ft.trust.mint(signer, audience=AUD)).tenant == "acme"


def test_bad_keys_are_refused() -> None:
    """RSA keys, symmetric JWKs, private JWKs, missing kids and unreadable files: TrustKeyError."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    with pytest.raises(TrustKeyError):
        ft.trust.Signer(rsa.generate_private_key(65537, 2048), kid="r")  # type: ignore[arg-type]
    with pytest.raises(TrustKeyError):
        ft.trust.Signer(ec.generate_private_key(ec.SECP384R1()), kid="p384")
    with pytest.raises(TrustKeyError):
        ft.trust.Signer.from_pem("/nonexistent/key.pem", kid="k")
    with pytest.raises(TrustKeyError):
        ft.trust.Signer.generate(kid="")
    good = ft.trust.Signer.generate(kid="k1").public_jwk()
    for bad in (
        {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
        {**good, "d": "AAAA"},
        {key: value for key, value in good.items() if key != "kid"},
        {**good, "alg": "HS256"},
        {**good, "x": "!!"},
    ):
        with pytest.raises(TrustKeyError):
            ft.trust.Verifier({"keys": [bad]}, audience=AUD)
    with pytest.raises(TrustKeyError):
        ft.trust.jwks(good, good)  # the same kid twice


def test_verifier_options_are_bounded() -> None:
    """Skew is bounded (at most MAX_SKEW); the audience is required."""
    with pytest.raises(ConfigError):
        ft.trust.Verifier({"keys": []}, audience=AUD, leeway=ft.trust.MAX_SKEW + 1)
    with pytest.raises(ConfigError):
        ft.trust.Verifier({"keys": []}, audience="")


def test_expiry_with_bounded_skew(signer: ft.trust.Signer) -> None:
    """Valid until exp + leeway; one second later refused."""
    clock = Clock()
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, leeway=10, clock=clock)
    token = _mint(signer, ttl=60)
    clock.now = T0 + 70
    assert verifier.verify(token).txn == "txn-1"
    clock.now = T0 + 71
    with pytest.raises(TxnTokenExpiredError):
        verifier.verify(token)  # the cached result is re-checked for expiry


def test_issued_in_the_future_is_refused(signer: ft.trust.Signer) -> None:
    """A token from beyond the skew (a minting clock far ahead) is refused."""
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, clock=Clock(T0 - 120))
    with pytest.raises(TxnTokenExpiredError):
        verifier.verify(_mint(signer))


def test_queued_message_policy(signer: ft.trust.Signer) -> None:
    """Expired while queued: refused by default; accepted and marked within max_queue_age."""
    clock = Clock(T0 + 600)
    token = _mint(signer, ttl=60)
    strict = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, clock=clock)
    with pytest.raises(TxnTokenExpiredError):
        strict.verify(token)
    queue = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, clock=clock, max_queue_age=3600)
    assert queue.verify(token).expired_in_queue is True
    clock.now = T0 + 3601
    with pytest.raises(TxnTokenExpiredError):
        queue.verify(token)


def test_rotation_keeps_in_flight_tokens(signer: ft.trust.Signer) -> None:
    """Old and new kid verify together; after revoking the old one only the new verifies."""
    new = ft.trust.Signer.generate(kid="edge-2", alg="ES256")
    verifier = ft.trust.Verifier(ft.trust.jwks(signer, new), audience=AUD, clock=Clock())
    old_token, new_token = _mint(signer), _mint(new)
    assert verifier.verify(old_token).kid == "edge-1"
    assert verifier.verify(new_token).kid == "edge-2"
    verifier.revoke("edge-1")
    with pytest.raises(UnknownTxnKeyError):
        verifier.verify(old_token)  # was cached: revocation empties the cache
    verifier.update(ft.trust.jwks(new))
    assert verifier.kids == ("edge-2",)
    assert verifier.verify(new_token).kid == "edge-2"


def test_a_batch_verifies_its_token_once(
    signer: ft.trust.Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second verification of a token is a cache hit: PyJWT's decode runs once."""
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, clock=Clock())
    token = _mint(signer)
    calls = []
    original = pyjwt.decode
    monkeypatch.setattr(pyjwt, "decode", lambda *a, **k: calls.append(1) or original(*a, **k))
    results = {id(verifier.verify(token)) for _ in range(100)}
    assert (len(calls), len(results)) == (1, 1)


def test_cache_is_bounded(signer: ft.trust.Signer) -> None:
    """The cache never holds more than cache_size tokens."""
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, cache_size=8)
    with ft.context(tenant="acme"):
        for _ in range(50):
            verifier.verify(ft.trust.mint(signer, audience=AUD))
    assert len(verifier._cache) <= 8


def test_narrowing_keeps_the_txn_and_records_the_chain(signer: ft.trust.Signer) -> None:
    """A re-mint dropping the user keeps the txn and names the parent token."""
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD)
    with ft.context(tenant="acme", user="u-1", correlation_id="txn-9"):
        parent = verifier.verify(ft.trust.mint(signer, audience=AUD))
    with ft.context(tenant="acme", purpose="batch"):
        child = verifier.verify(ft.trust.mint(signer, audience=AUD, parent=parent.claims))
    assert (child.txn, child.user, child.chain) == ("txn-9", None, (parent.claims["jti"],))


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyJWT the error names flowtrace-sdk[jwt]."""
    import sys

    monkeypatch.setitem(sys.modules, "jwt", None)
    with pytest.raises(ft.MissingExtraError, match=r"flowtrace-sdk\[jwt\]"):
        ft.trust.Verifier({"keys": []}, audience=AUD)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.hex()))
def test_any_garbage_is_refused_with_a_typed_error(garbage: str) -> None:
    """Arbitrary strings never verify and never raise anything but a TxnTokenError."""
    verifier = ft.trust.Verifier(ft.trust.jwks(ft.trust.Signer.generate(kid="k1")), audience=AUD)
    with pytest.raises(ft.errors.TxnTokenError):
        verifier.verify(garbage)


def test_wrong_audience_and_edited_token(signer: ft.trust.Signer) -> None:
    """Another trust domain's token and a token with an edited payload are refused."""
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, clock=Clock())
    with ft.context(tenant="acme"):
        other = ft.trust.mint(signer, audience="other.example", now=T0)
    with pytest.raises(TxnTokenAudienceError):
        verifier.verify(other)
    head, body, sig = _mint(signer).split(".")
    claims = pyjwt.decode(".".join((head, body, sig)), options={"verify_signature": False})
    claims["tctx"]["tenant"] = "globex"
    forged_body = pyjwt.api_jws.base64url_encode(
        pyjwt.api_jwt.json.dumps(claims, separators=(",", ":")).encode()
    ).decode()
    with pytest.raises(TxnTokenSignatureError):
        verifier.verify(".".join((head, forged_body, sig)))
    with pytest.raises(MalformedTxnTokenError):
        verifier.verify(head + "." + body)


def test_alg_none_and_hmac_with_the_public_key(signer: ft.trust.Signer) -> None:
    """alg none and HS256 keyed with the public key's bytes are algorithm errors."""
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, clock=Clock())
    claims = pyjwt.decode(_mint(signer), options={"verify_signature": False})
    none = pyjwt.encode(
        claims, None, algorithm="none", headers={"kid": "edge-1", "typ": "txntoken+jwt"}
    )
    with pytest.raises(TxnTokenAlgorithmError):
        verifier.verify(none)


_VALUE = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_categories=("Cc", "Cs", "Zl", "Zp")
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    tenant=_VALUE, user=st.none() | _VALUE, purpose=st.none() | _VALUE, region=st.none() | _VALUE
)
def test_any_context_round_trips(
    tenant: str, user: str | None, purpose: str | None, region: str | None
) -> None:
    """Whatever valid flow context is minted is exactly what verifies."""
    signer = _SIGNER
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD)
    sent = ft.FlowContext(tenant=tenant, user=user, purpose=purpose, region=region)
    result = verifier.verify(ft.trust.mint(signer, audience=AUD, context=sent), context=sent)
    assert (result.tenant, result.user, result.purpose, result.region) == (
        tenant,
        user,
        purpose,
        region,
    )


_SIGNER = ft.trust.Signer.generate(kid="prop")


def test_one_verifier_shared_by_threads(signer: ft.trust.Signer) -> None:
    """Eight threads verifying through one small cache: every result right, no error."""
    import threading

    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, cache_size=4)
    tokens = []
    for number in range(16):
        with ft.context(tenant=f"t{number}"):
            tokens.append(ft.trust.mint(signer, audience=AUD))
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                for number, token in enumerate(tokens):
                    assert verifier.verify(token).tenant == f"t{number}"
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(verifier._cache) <= 4 + 8  # bounded (racing inserts may overshoot by threads)
