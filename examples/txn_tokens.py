"""Zero trust across hops: the edge mints a transaction token, every hop verifies it.

Run it: ``python examples/txn_tokens.py`` (needs ``pip install 'flowtrace-sdk[jwt]'``).
Offline, no servers; it asserts what it prints.

1. The edge verifies a caller (here: a dict standing in for verified OIDC claims), mints a
   Txn-Token from the flow context and injects it with the baggage.
2. A worker with ``trust="required"`` runs the message in the token's tenant.
3. An insider publishes with forged baggage: without a token, and with a valid token of
   another tenant. Both are dead-lettered intact and audited.
4. The signing key rotates: old and new kids verify side by side, then the old one is
   revoked and its tokens are refused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import flowtrace as ft

TRUST_DOMAIN = "shop.internal"


class Message:
    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.headers, self.body = headers, body


def main() -> None:
    workdir = Path(tempfile.mkdtemp())
    log = ft.audit.AuditLog(str(workdir / "audit.jsonl"))
    ft.configure(audit_log=log)
    old_key = ft.trust.Signer.generate(kid="edge-2026-11")
    new_key = ft.trust.Signer.generate(kid="edge-2026-12", alg="ES256")
    verifier = ft.trust.Verifier(ft.trust.jwks(old_key, new_key), audience=TRUST_DOMAIN)
    queue: list[Message] = []

    @ft.handler(tenant=lambda claims: claims["tenant"], user=lambda claims: claims["sub"],
                correlation_id=lambda claims: claims["request_id"], purpose="checkout")
    def edge(claims: dict[str, str]) -> None:
        token = ft.trust.mint(new_key, audience=TRUST_DOMAIN, ttl=60)
        queue.append(Message(ft.inject({}, identity=True, txn_token=token), b'{"cart": 3}'))

    dead_letters: list[Message] = []
    processed: list[tuple[str | None, str | None]] = []

    @ft.consumer("orders.worker", trust="required", verifier=verifier,
                 on_missing=dead_letters.append)
    def worker(message: Message) -> None:
        processed.append((ft.current().tenant, ft.current().correlation_id))

    edge({"tenant": "acme", "sub": "u-1", "request_id": "req-42"})
    print("1. edge minted; headers:", sorted(queue[0].headers))

    with ft.context(tenant="acme"):
        queue.append(Message(ft.inject({}), b"no token"))                 # insider, no token
    with ft.context(tenant="globex"):
        stolen = ft.inject({}, txn_token=ft.trust.mint(new_key, audience=TRUST_DOMAIN))
    stolen["baggage"] = "flowtrace.tenant=acme"                           # baggage edited
    queue.append(Message(stolen, b"tenant swap"))
    for message in queue:
        worker(message)
    assert processed == [("acme", "req-42")]
    assert [m.body for m in dead_letters] == [b"no token", b"tenant swap"]
    print("2. processed:", processed)
    print("3. dead-lettered intact:", [m.body for m in dead_letters])

    with ft.context(tenant="acme"):
        in_flight = ft.trust.mint(old_key, audience=TRUST_DOMAIN)
    assert verifier.verify(in_flight).kid == "edge-2026-11"               # rotation overlap
    verifier.revoke("edge-2026-11")
    try:
        verifier.verify(in_flight)
    except ft.errors.UnknownTxnKeyError as error:
        print("4. after revoking the old kid:", type(error).__name__)
    else:
        raise AssertionError("a revoked key's token verified")

    ft.configure(audit_log=None)
    log.close()
    denied = [line for line in (workdir / "audit.jsonl").read_text().splitlines()
              if "txn_token_refused" in line]
    assert len(denied) == 2
    print(f"   audit: {len(denied)} denied flowtrace.txn_token_refused records")



if __name__ == "__main__":
    main()
