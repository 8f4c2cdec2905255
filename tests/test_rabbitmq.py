"""Real RabbitMQ: a handler publishes, a consumer on another thread gets the same flow context."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import flowtrace as ft
from flowtrace.testing import Capture
from tests._services import require_service

pika = pytest.importorskip("pika")

pytestmark = pytest.mark.services


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
    queue, dlq = f"flowtrace-test-{suffix}", f"flowtrace-test-dlq-{suffix}"
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


def test_context_crosses_rabbitmq_and_tenantless_is_dead_lettered(
    broker: tuple[str, int, str, str], flowtrace_capture: Capture
) -> None:
    """Same tenant/user on the far side, span link to the producer, orphan dead-lettered intact."""
    host, port, queue, dlq = broker
    received: list[tuple[ft.FlowContext, bytes]] = []
    dead: list[bytes] = []
    ready = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            connection = connect(host, port)
            channel = connection.channel()

            def dead_letter(ch: Any, method: Any, properties: Any, body: bytes) -> None:
                ch.basic_publish("", dlq, body, properties=properties)
                ch.basic_ack(method.delivery_tag)
                dead.append(body)

            @ft.consumer("invoices.consume", on_missing=dead_letter)
            def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
                received.append((ft.current(), body))
                ch.basic_ack(method.delivery_tag)

            channel.basic_consume(queue, on_message)
            ready.set()
            deadline = time.monotonic() + 20
            while len(received) + len(dead) < 2 and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.1)
            connection.close()
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)
            ready.set()

    consumer_thread = threading.Thread(target=consume)
    consumer_thread.start()
    assert ready.wait(20)

    publisher = connect(host, port)
    channel = publisher.channel()

    @ft.handler("invoices.publish", tenant=lambda claims: claims["tenant"],
                user=lambda claims: claims["sub"])
    def publish(claims: dict[str, str]) -> None:
        properties = pika.BasicProperties(headers=ft.inject({}, identity=True))
        channel.basic_publish("", queue, b'{"invoice": 1}', properties=properties)

    publish({"tenant": "acme", "sub": "u-1"})
    orphan = bytes(range(256)) + b"\x00 raw payload"
    channel.basic_publish("", queue, orphan, properties=pika.BasicProperties())
    consumer_thread.join(30)
    assert not consumer_thread.is_alive()
    assert errors == []

    (ctx, body), = received
    assert (ctx.tenant, ctx.user, body) == ("acme", "u-1", b'{"invoice": 1}')
    assert dead == [orphan]
    method, _props, dead_body = channel.basic_get(dlq, auto_ack=True)
    assert method is not None
    assert dead_body == orphan
    publisher.close()

    producer = flowtrace_capture.span("invoices.publish")
    consumer_spans = flowtrace_capture.spans("invoices.consume")
    assert len(consumer_spans) == 2
    linked = [s for s in consumer_spans if s.links]
    (consumer_span,) = linked
    assert consumer_span.links[0].context.span_id == producer.context.span_id
    assert flowtrace_capture.flow_attributes(consumer_span) == {"tenant": "acme", "user": "u-1"}
    (refused,) = flowtrace_capture.events(ft.EventKind.MESSAGE_REFUSED)
    assert refused.attributes == {
        "consumer": "invoices.consume",
        "reason": "missing_tenant",
        "dead_lettered": True,
    }
