"""Across processes: handler -> RabbitMQ -> consumer (another process) -> step.

The consumer's step names no input at all: its output reaches the handler's input record
only through the lineage parent that travelled in the message's baggage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import flowtrace as ft
from flowtrace import lineage
from tests._services import require_service

pika = pytest.importorskip("pika")

pytestmark = pytest.mark.services

CONSUMER = textwrap.dedent(
    """
    import json, sys
    import pika
    from opentelemetry.sdk.trace import TracerProvider
    import flowtrace as ft
    from flowtrace import lineage

    host, port, queue, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ft.configure(tracer_provider=TracerProvider(), service="shipping")
    buffer = lineage.LineageBuffer(out + "/consumer-lineage")
    ft.configure(lineage=ft.lineage.LineageConfig(buffer=buffer))
    seen = {}

    @ft.step("create-shipment", outputs=lambda shipment: [shipment], code_version="ship-1.0")
    def create_shipment(order: dict) -> str:
        return f"postgres://shipping/shipments#sh_{order['order']}"

    @ft.consumer("orders.consume")
    def on_message(ch, method, properties, body):
        seen["context"] = ft.current().to_dict()
        seen["shipment"] = create_shipment(json.loads(body))
        ch.basic_ack(method.delivery_tag)

    connection = pika.BlockingConnection(pika.ConnectionParameters(
        host=host, port=port, credentials=pika.PlainCredentials("guest", "guest")))
    channel = connection.channel()
    for _ in range(300):  # up to 30 s; the message is already queued
        method, properties, body = channel.basic_get(queue)
        if method is not None:
            on_message(channel, method, properties, body)
            break
        connection.process_data_events(time_limit=0.1)
    connection.close()
    buffer.close()
    with open(out + "/result.json", "w") as f:
        json.dump(seen, f)
    """
)


@pytest.fixture
def queue() -> Iterator[tuple[str, int, str]]:
    host, port = require_service("rabbitmq")
    name = f"flowtrace-lineage-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            host=host, port=port, credentials=pika.PlainCredentials("guest", "guest")
        )
    )
    channel = connection.channel()
    channel.queue_declare(name)
    try:
        yield host, port, name
    finally:
        channel.queue_delete(name)
        connection.close()


def test_consumer_output_descends_from_handler_input_across_processes(
    queue: tuple[str, int, str], tmp_path: Path
) -> None:
    """upstream(shipment) made in another process reaches the handler's order request."""
    host, port, name = queue
    ft.configure(tracer_provider=TracerProvider(), service="orders")
    buffer = lineage.LineageBuffer(tmp_path / "handler-lineage")
    ft.configure(lineage=ft.lineage.LineageConfig(buffer=buffer))
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            host=host, port=port, credentials=pika.PlainCredentials("guest", "guest")
        )
    )
    channel = connection.channel()

    @ft.step(
        "accept-order",
        inputs=lambda request: [f"https://api.example.com/orders#{request['body']['order']}"],
        outputs=lambda message_id: [f"amqp://orders/{name}#{message_id}"],
    )
    def accept(request: dict[str, Any]) -> str:
        message_id = uuid.uuid4().hex
        channel.basic_publish(
            "",
            name,
            json.dumps(request["body"]).encode(),
            properties=pika.BasicProperties(headers=ft.inject({}), message_id=message_id),
        )
        return message_id

    @ft.handler(tenant=lambda request: request["claims"]["tenant"], purpose="fulfilment")
    def post_order(request: dict[str, Any]) -> str:
        return accept(request)

    post_order({"claims": {"tenant": "acme"}, "body": {"order": "ord_42"}})
    connection.close()
    buffer.close()

    child = subprocess.run(
        [sys.executable, "-c", CONSUMER, host, str(port), name, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    shipment = result["shipment"]
    assert shipment == "postgres://shipping/shipments#sh_ord_42"
    assert result["context"]["tenant"] == "acme"

    # Each process wrote its own durable buffer; the graph joins them.
    (accepted,) = lineage.read_buffer(tmp_path / "handler-lineage")
    graph = lineage.LineageGraph([accepted])
    graph.add_all(lineage.read_buffer(tmp_path / "consumer-lineage"))
    assert len(graph) == 2
    (made,) = graph.producers(shipment)
    assert made.inputs == ()  # nothing named explicitly ...
    assert made.parents == (accepted.id,)  # ... the parent came through RabbitMQ
    assert made.tenant == "acme"
    assert made.service == "shipping"
    assert accepted.service == "orders"
    assert graph.sources(shipment) == ["https://api.example.com/orders#ord_42"]
    assert graph.downstream("https://api.example.com/orders#ord_42")[-1] == shipment
