"""orders-api (eu): POST /orders encrypts the card, publishes the order to RabbitMQ.

The order goes to the fulfilment queue of the region the client asks for
(``ship_from``); the residency guard refuses an eu tenant's order to the ``us`` queue
before anything is published (HTTP 451, audited). ``newsletter: true`` also publishes the
email to a marketing queue: a new flow nobody declared. Prints ``READY <port>``.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pika
from common import RABBITMQ, RUN_DIR, SCHEMA, configure, marketing_queue, orders_queue, ready
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import map as ftmap
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, MemoryVaultStore
from flowtrace.errors import ResidencyViolationError

tracer = configure("orders-api", "eu")
provider = LocalKeyProvider.open_keyring(
    RUN_DIR / "keyring.json", master_key=LocalKeyProvider.new_master_key(), create=["kek-1"]
)
encryptor = FieldEncryptor(KeyVault(provider, MemoryVaultStore(), kek_id="kek-1"))
connection = pika.BlockingConnection(
    pika.ConnectionParameters(
        host=RABBITMQ[0], port=RABBITMQ[1], credentials=pika.PlainCredentials("guest", "guest")
    )
)
channel = connection.channel()


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        # In a real service tenant and user come from verified credentials.
        with (
            ft.context(
                tenant=request["tenant"],
                user=request["user"],
                purpose="checkout",
                legal_basis="contract",
                region=request["region"],
            ),
            tracer.start_as_current_span(
                "POST /orders",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": "POST", "url.path": "/orders"},
            ) as span,
        ):
            trace_id = format(span.get_span_context().trace_id, "032x")
            order = {
                "order_id": request["order_id"],
                "email": request["email"],
                "card": encryptor.encrypt(request["card"], field="card"),
                "amount": request["amount"],
            }
            try:
                ftmap.publish(
                    channel,
                    routing_key=orders_queue(request.get("ship_from", "eu")),
                    body=json.dumps(order).encode(),
                    payload=order,
                    schema=SCHEMA,
                )
            except ResidencyViolationError as exc:
                self._reply(451, {"error": str(exc), "trace_id": trace_id})
                return
            if request.get("newsletter"):
                signup = {"email": request["email"]}
                ftmap.publish(
                    channel,
                    routing_key=marketing_queue(),
                    body=json.dumps(signup).encode(),
                    payload=signup,
                    schema=SCHEMA,
                )
            self._reply(202, {"trace_id": trace_id})

    def log_message(self, format: str, *args: Any) -> None:
        return None


if __name__ == "__main__":
    server = HTTPServer(("127.0.0.1", 0), Handler)
    ready(str(server.server_address[1]))
    try:
        server.serve_forever()
    finally:
        connection.close()
