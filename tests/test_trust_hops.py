"""Every hop verifies: inject/extract carry the Txn-Token, decorators refuse and audit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import flowtrace as ft
from flowtrace.errors import (
    ConfigError,
    MissingTxnTokenError,
    TxnTokenContextError,
    TxnTokenExpiredError,
)

AUD = "trust.example"


@pytest.fixture
def edge() -> ft.trust.Signer:
    return ft.trust.Signer.generate(kid="edge-1")


@pytest.fixture
def verifier(edge: ft.trust.Signer) -> ft.trust.Verifier:
    return ft.trust.Verifier(ft.trust.jwks(edge), audience=AUD)


@pytest.fixture
def events() -> Any:
    seen: list[ft.FlowEvent] = []
    observer = ft.add_observer(seen.append)
    yield seen
    ft.remove_observer(observer)


def _headers(edge: ft.trust.Signer, tenant: str = "acme", **fields: str) -> dict[str, str]:
    with ft.context(tenant=tenant, **fields):
        return ft.inject({}, txn_token=ft.trust.mint(edge, audience=AUD))


def test_inject_and_extract_carry_the_token(edge: ft.trust.Signer, verifier: Any) -> None:
    """inject writes txn-token; extract(verifier=) checks it against the baggage."""
    headers = _headers(edge)
    assert headers["txn-token"].count(".") == 2
    assert ft.extract(headers, verifier=verifier).tenant == "acme"
    assert (
        ft.extract(
            {"Txn-Token": headers["txn-token"], "baggage": headers["baggage"]}, verifier=verifier
        ).tenant
        == "acme"
    )
    forged = {**headers, "baggage": "flowtrace.tenant=globex"}
    with pytest.raises(TxnTokenContextError):
        ft.extract(forged, verifier=verifier)
    with pytest.raises(MissingTxnTokenError):
        ft.extract({"baggage": headers["baggage"]}, verifier=verifier)
    assert ft.extract({"baggage": headers["baggage"]}).tenant == "acme"  # no verifier: as before


def test_consumer_required_runs_verified_messages(edge: ft.trust.Signer, verifier: Any) -> None:
    """A message with a valid token for its baggage's tenant runs in that tenant."""

    @ft.consumer(trust="required", verifier=verifier)
    def on_message(message: Any) -> str | None:
        return ft.current().tenant

    assert on_message(SimpleNamespace(headers=_headers(edge))) == "acme"


def test_consumer_refuses_and_audits_forged_baggage(
    edge: ft.trust.Signer, verifier: Any, events: list[ft.FlowEvent]
) -> None:
    """Baggage naming another tenant than the token: refused, a txn_token_refused event."""
    headers = _headers(edge, tenant="globex")
    headers["baggage"] = "flowtrace.tenant=acme"  # the insider edits the baggage

    @ft.consumer("orders", trust="required", verifier=verifier)
    def on_message(message: Any) -> None:
        raise AssertionError("must not run")

    with pytest.raises(TxnTokenContextError):
        on_message(SimpleNamespace(headers=headers))
    refused = [e for e in events if e.kind == ft.EventKind.TXN_TOKEN_REFUSED]
    assert [(e.attributes["reason"], e.attributes["hop"]) for e in refused] == [
        ("TxnTokenContextError", "orders")
    ]


def test_consumer_dead_letters_a_message_without_token_intact(verifier: Any) -> None:
    """An insider's message with baggage but no token goes, untouched, to on_missing."""
    dead: list[Any] = []

    @ft.consumer(trust="required", verifier=verifier, on_missing=dead.append)
    def on_message(message: Any) -> None:
        raise AssertionError("must not run")

    with ft.context(tenant="acme"):
        message = SimpleNamespace(headers=ft.inject({}), body=b"payload")
    on_message(message)
    assert dead == [message]
    assert dead[0].body == b"payload"


def test_optional_records_absence_and_still_refuses_bad_tokens(
    edge: ft.trust.Signer, verifier: Any, events: list[ft.FlowEvent]
) -> None:
    """optional: no token runs and is recorded; a present but bad token is refused."""

    @ft.consumer(trust="optional", verifier=verifier)
    def on_message(message: Any) -> str | None:
        return ft.current().tenant

    with ft.context(tenant="acme"):
        assert on_message(SimpleNamespace(headers=ft.inject({}))) == "acme"
    assert [e.attributes["status"] for e in events if e.kind == "txn_token"] == ["absent"]
    bad = _headers(edge)
    bad["txn-token"] = bad["txn-token"][:-4]
    with pytest.raises(ft.errors.TxnTokenError):
        on_message(SimpleNamespace(headers=bad))


def test_queued_too_long_follows_the_policy(edge: ft.trust.Signer, events: Any) -> None:
    """Expired in the queue: refused by default; accepted with an audit note under max_queue_age."""
    import time

    with ft.context(tenant="acme"):
        token = ft.trust.mint(edge, audience=AUD, ttl=10, now=time.time() - 600)
        headers = ft.inject({}, txn_token=token)
    strict = ft.trust.Verifier(ft.trust.jwks(edge), audience=AUD)
    lenient = ft.trust.Verifier(ft.trust.jwks(edge), audience=AUD, max_queue_age=3600)

    @ft.consumer(trust="required", verifier=strict)
    def strict_consumer(message: Any) -> None: ...

    @ft.consumer(trust="required", verifier=lenient)
    def lenient_consumer(message: Any) -> str | None:
        return ft.current().tenant

    with pytest.raises(TxnTokenExpiredError):
        strict_consumer(SimpleNamespace(headers=headers))
    assert lenient_consumer(SimpleNamespace(headers=headers)) == "acme"
    assert [e.attributes["status"] for e in events if e.kind == "txn_token"] == ["expired_in_queue"]


def test_handler_verifies_against_the_resolved_tenant(edge: ft.trust.Signer, verifier: Any) -> None:
    """A handler's credentials resolve the tenant; the token must vouch for the same one."""

    @ft.handler(
        tenant=lambda request: request.claims["tenant"],
        carrier=lambda request: request.headers,
        trust="required",
        verifier=verifier,
    )
    def serve(request: Any) -> str:
        return ft.require_tenant()

    token = _headers(edge)["txn-token"]
    assert serve(SimpleNamespace(claims={"tenant": "acme"}, headers={"txn-token": token})) == "acme"
    with pytest.raises(TxnTokenContextError):
        serve(SimpleNamespace(claims={"tenant": "globex"}, headers={"txn-token": token}))
    with pytest.raises(MissingTxnTokenError):
        serve(SimpleNamespace(claims={"tenant": "acme"}, headers={}))


def test_misconfiguration_fails_at_decoration(verifier: Any) -> None:
    """trust= without a verifier, a bad mode, or a handler without a carrier: ConfigError."""
    with pytest.raises(ConfigError):
        ft.consumer(trust="required")(lambda message: None)
    with pytest.raises(ConfigError):
        ft.consumer(trust="always", verifier=verifier)(lambda message: None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ft.handler(tenant="acme", trust="required", verifier=verifier)(lambda: None)


def test_refusals_reach_the_audit_log(tmp_path: Any, verifier: Any) -> None:
    """A refused message is recorded as a denied flowtrace.txn_token_refused audit record."""
    log = ft.audit.AuditLog(str(tmp_path / "audit.jsonl"))
    ft.configure(audit_log=log)
    try:

        @ft.consumer(trust="required", verifier=verifier)
        def on_message(message: Any) -> None: ...

        with ft.context(tenant="acme"):
            headers = ft.inject({})
        with pytest.raises(MissingTxnTokenError):
            on_message(SimpleNamespace(headers=headers))
    finally:
        ft.configure(audit_log=None)
        log.close()
    text = (tmp_path / "audit.jsonl").read_text()
    assert '"flowtrace.txn_token_refused"' in text
    assert '"denied"' in text


def test_demo_step_runs_and_skips_without_the_extra(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo step passes offline; without PyJWT it says what to install and passes."""
    import sys

    from flowtrace._demo import trust as step

    said: list[str] = []
    step.run(tmp_path, said.append)
    assert any("ran as tenant-a" in line for line in said)
    assert (tmp_path / "trust-jwks.json").exists()
    monkeypatch.setitem(sys.modules, "jwt", None)
    said.clear()
    step.run(tmp_path, said.append)
    assert said == ["skipped: pip install 'flowtrace-sdk[jwt]' to see transaction tokens"]
