"""Real RabbitMQ with trust="required": the edge's token crosses the queue and is verified;
an insider's message (no token, or a valid token for another tenant under edited baggage)
is refused and dead-lettered intact."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import flowtrace as ft
from tests._services import require_service

pika = pytest.importorskip("pika")

pytestmark = pytest.mark.services
AUD = "orders.internal"


def connect(host: str, port: int) -> Any:
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host=host, port=port, credentials=pika.PlainCredentials("guest", "guest")
        )
    )


@pytest.fixture
def broker() -> Iterator[tuple[str, int, str, str]]:
    """(host, port, queue, dead-letter queue): unique queues, deleted afterwards."""
    host, port = require_service("rabbitmq")
    suffix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    queue, dlq = f"flowtrace-trust-{suffix}", f"flowtrace-trust-dlq-{suffix}"
    connection = connect(host, port)
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.queue_declare(dlq)
    try:
        yield host, port, queue, dlq
    finally:
        channel.queue_delete(queue)
        channel.queue_delete(dlq)
        connection.close()


def test_only_edge_minted_messages_are_processed(broker: tuple[str, int, str, str]) -> None:
    """Edge -> RabbitMQ -> worker verifies; insider messages land in the DLQ byte for byte."""
    host, port, queue, dlq = broker
    edge_key = ft.trust.Signer.generate(kid="edge-1")
    verifier = ft.trust.Verifier(ft.trust.jwks(edge_key), audience=AUD)
    processed: list[tuple[str | None, str | None, bytes]] = []
    dead: list[bytes] = []
    refusals: list[ft.FlowEvent] = []
    observer = ft.add_observer(
        lambda e: refusals.append(e) if e.kind == ft.EventKind.TXN_TOKEN_REFUSED else None
    )
    ready = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            connection = connect(host, port)
            channel = connection.channel()

            def dead_letter(ch: Any, method: Any, properties: Any, body: bytes) -> None:
                ch.basic_publish("", dlq, body, properties=properties)
                ch.basic_ack(method.delivery_tag)
                dead.append(body)

            @ft.consumer(
                "orders.worker", trust="required", verifier=verifier, on_missing=dead_letter
            )
            def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
                processed.append((ft.current().tenant, ft.current().correlation_id, body))
                ch.basic_ack(method.delivery_tag)

            channel.basic_consume(queue, on_message)
            ready.set()
            deadline = time.monotonic() + 20
            while len(processed) + len(dead) < 3 and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.1)
            connection.close()
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=worker)
    thread.start()
    assert ready.wait(20)
    publisher = connect(host, port)
    channel = publisher.channel()

    @ft.handler(
        "orders.edge",
        tenant=lambda claims, body: claims["tenant"],
        correlation_id=lambda claims, body: claims["request_id"],
    )
    def edge(claims: dict[str, str], body: bytes) -> None:
        # the external credential was verified: mint, then publish with baggage + token
        token = ft.trust.mint(edge_key, audience=AUD, request_context={"req_wl": "edge"})
        headers = ft.inject({}, txn_token=token)
        channel.basic_publish("", queue, body, properties=pika.BasicProperties(headers=headers))

    edge({"tenant": "acme", "request_id": "req-1"}, b'{"order": 1}')
    # insider 1: the queue credentials, a tenant of their choosing, no token
    with ft.context(tenant="acme"):
        no_token = ft.inject({})
    forged_body = bytes(range(256)) + b"insider"
    channel.basic_publish("", queue, forged_body, properties=pika.BasicProperties(headers=no_token))
    # insider 2: a valid token of their own tenant (globex), baggage edited to acme
    with ft.context(tenant="globex"):
        own = ft.inject({}, txn_token=ft.trust.mint(edge_key, audience=AUD))
    own["baggage"] = "flowtrace.tenant=acme"
    channel.basic_publish("", queue, b"swap", properties=pika.BasicProperties(headers=own))
    thread.join(30)
    ft.remove_observer(observer)
    assert not thread.is_alive()
    assert errors == []
    assert processed == [("acme", "req-1", b'{"order": 1}')]
    assert dead == [forged_body, b"swap"]
    kept = []
    for _ in range(2):
        method, properties, body = channel.basic_get(dlq, auto_ack=True)
        assert method is not None
        kept.append((body, properties.headers))
    publisher.close()
    assert kept == [(forged_body, no_token), (b"swap", own)]  # intact: body and headers
    assert [(e.attributes["reason"], e.attributes["dead_lettered"]) for e in refusals] == [
        ("missing", True),
        ("TxnTokenContextError", True),
    ]
