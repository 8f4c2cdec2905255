"""A small service: an HTTP-style handler publishes an event, a consumer processes it.

Runs offline (an in-memory queue stands in for the broker) and asserts what it claims:

* the tenant and user come from verified credentials, not from request headers;
* the consumer sees exactly the producer's flow context, in a span linked to the producer;
* a message without a tenant is dead-lettered intact; one for an unknown tenant is refused;
* every span carries the flow context (``flowtrace.tenant``, ``enduser.id``...).

    python examples/service.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtrace as ft

# --- wiring: spans go to an in-memory exporter (use OTLPSpanExporter in production) ---------
spans = InMemorySpanExporter()
settings = ft.configure(service="invoices", region="eu", span_exporters=[spans])


# --- the application ---------------------------------------------------------------------------
@dataclass
class Request:
    """What a web framework hands a handler: verified claims plus untrusted headers."""

    claims: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Message:
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


QUEUE: list[Message] = []
DEAD_LETTERS: list[Message] = []
LEDGER: list[tuple[str | None, str | None, int]] = []


@ft.handler(
    "POST /invoices",
    tenant=lambda request: request.claims["tenant"],  # from a verified JWT
    user=lambda request: request.claims["sub"],
    purpose="billing",
    legal_basis="contract",
    carrier=lambda request: request.headers,  # untrusted: checked, never adopted
)
def create_invoice(request: Request) -> dict[str, str]:
    # Our own queue is inside the trust domain, so the user travels with the message.
    QUEUE.append(Message(request.body, headers=ft.inject({}, identity=True)))
    return {"status": "accepted"}


@ft.consumer("invoices.process", on_missing=DEAD_LETTERS.append, allowed_tenants={"acme", "globex"})
def process_invoice(message: Message) -> None:
    ctx = ft.current()
    LEDGER.append((ctx.tenant, ctx.user, message.body["amount"]))


# --- what it proves ----------------------------------------------------------------------------
def main() -> None:
    assert create_invoice(Request({"tenant": "acme", "sub": "alice"}, {"amount": 42})) == {
        "status": "accepted"
    }
    process_invoice(QUEUE.pop())
    assert LEDGER == [("acme", "alice", 42)], LEDGER

    # A client forging another tenant in its headers is refused.
    with ft.context(tenant="globex"):
        forged_headers = ft.inject({})
    try:
        create_invoice(Request({"tenant": "acme", "sub": "alice"}, {"amount": 1}, forged_headers))
    except ft.TenantMismatchError:
        pass
    else:
        raise AssertionError("forged tenant header was accepted")
    assert QUEUE == []

    # A message without a tenant goes, intact, to the dead-letter list.
    orphan = Message({"amount": 7})
    process_invoice(orphan)
    assert len(DEAD_LETTERS) == 1
    assert DEAD_LETTERS[0] is orphan

    # A tenant this consumer does not serve is refused.
    with ft.context(tenant="initech"):
        foreign = Message({"amount": 9}, headers=ft.inject({}))
    try:
        process_invoice(foreign)
    except ft.TenantNotAllowedError:
        pass
    else:
        raise AssertionError("message of a tenant outside allowed_tenants was processed")
    assert LEDGER == [("acme", "alice", 42)]

    settings.tracer_provider.force_flush()
    finished = spans.get_finished_spans()
    producer = next(s for s in finished if s.name == "POST /invoices")
    consumer = next(s for s in finished if s.name == "invoices.process")
    assert consumer.links[0].context.span_id == producer.context.span_id
    for span in (producer, consumer):
        attributes = dict(span.attributes or {})
        assert attributes["flowtrace.tenant"] == "acme", attributes
        assert attributes["enduser.id"] == "alice", attributes
    print("service example: all claims hold")


if __name__ == "__main__":
    main()
