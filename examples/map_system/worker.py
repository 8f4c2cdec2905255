"""billing-worker (eu): consumes orders from RabbitMQ, stores them in PostgreSQL and
charges the card (as its token) at the external payment processor.

Prints ``READY`` once consuming. Argument: the processor's URL.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any

import pika
import psycopg
from common import DB_NAME, PG_DSN, RABBITMQ, SCHEMA, configure, orders_queue, ready, table
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import map as ftmap

tracer = configure("billing-worker", "eu")
PSP_URL = sys.argv[1]
db = psycopg.connect(PG_DSN, autocommit=True)
QUEUE = orders_queue("eu")


def store(order: dict[str, Any]) -> None:
    row = {"order_id": order["order_id"], "email": order["email"], "card": order["card"]}
    ftmap.guard_destination(f"postgresql/{DB_NAME}")
    with tracer.start_as_current_span(
        f"INSERT {table()}",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.namespace": DB_NAME,
            "db.operation.name": "INSERT",
            "db.collection.name": table(),
            "server.address": "127.0.0.1",
            "server.port": 5432,
        },
    ):
        ftmap.record_data(row, schema=SCHEMA)
        db.execute(
            f"INSERT INTO {table()} (order_id, email, card) VALUES (%s, %s, %s)",
            (row["order_id"], row["email"], row["card"]),
        )


def charge(order: dict[str, Any]) -> None:
    request = {"card": order["card"], "amount": order["amount"]}
    host_port = PSP_URL.split("//", 1)[1].split("/", 1)[0]
    ftmap.guard_destination("payments-psp")
    with tracer.start_as_current_span(
        "POST",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": "POST",
            "url.full": PSP_URL,
            "server.address": host_port.split(":")[0],
            "server.port": int(host_port.split(":")[1]),
            "peer.service": "payments-psp",
        },
    ):
        ftmap.record_data(request, schema=SCHEMA)
        http = urllib.request.Request(
            PSP_URL,
            data=json.dumps(request).encode(),
            method="POST",
            headers=ft.inject({"Content-Type": "application/json"}),
        )
        with urllib.request.urlopen(http, timeout=10) as response:
            assert response.status == 200


@ft.consumer(
    "orders process",
    attributes={"messaging.system": "rabbitmq", "messaging.destination.name": QUEUE},
)
def process(ch: Any, method: Any, properties: Any, body: bytes) -> None:
    order = json.loads(body)
    ftmap.record_data(order, schema=SCHEMA)
    store(order)
    charge(order)
    ch.basic_ack(method.delivery_tag)


if __name__ == "__main__":
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            host=RABBITMQ[0],
            port=RABBITMQ[1],
            credentials=pika.PlainCredentials("guest", "guest"),
        )
    )
    channel = connection.channel()
    channel.basic_consume(QUEUE, process)
    ready()
    try:
        channel.start_consuming()
    finally:
        connection.close()
        db.close()
