"""aio-pika against real RabbitMQ: producer here, consumer in a subprocess, spans over OTLP."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import flowtrace as ft
from flowtrace.testing import Capture
from tests._services import require_service
from tests.test_otlp_export import Receiver, _value, receiver  # noqa: F401 (fixture)

aio_pika = pytest.importorskip("aio_pika")
from flowtrace.integrations import aio_pika as ft_aio_pika  # noqa: E402

pytestmark = pytest.mark.services

TOTAL = 1000
TENANTLESS = 50
CONSUMER = Path(__file__).with_name("_aio_pika_consumer.py")


@pytest.fixture
def queues() -> Iterator[tuple[str, str, str]]:
    """(url, queue, dead-letter queue): unique names, deleted afterwards."""
    host, port = require_service("rabbitmq")
    url = f"amqp://guest:guest@{host}:{port}/"
    suffix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    queue, dlq = f"ft-aio-{suffix}", f"ft-aio-dlq-{suffix}"

    async def declare(delete: bool) -> None:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            for name in (queue, dlq):
                if delete:
                    await channel.queue_delete(name)
                else:
                    await channel.declare_queue(name)

    asyncio.run(declare(False))
    yield url, queue, dlq
    asyncio.run(declare(True))


def _produce_pika(url: str, queue: str) -> list[bytes]:
    """The same messages through the pika producer helper (a blocking client)."""
    import pika

    from flowtrace.integrations import pika as ft_pika

    orphans: list[bytes] = []
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for i in range(TOTAL):
        if i % (TOTAL // TENANTLESS) == 0:
            body = os.urandom(64) + bytes(range(256))
            orphans.append(body)
            channel.basic_publish("", queue, body)
            continue
        tenant = f"tenant-{random.randrange(25)}"
        body = json.dumps({"id": i, "tenant": tenant}).encode()
        with ft.context(tenant=tenant, user=f"u{i}"):
            ft_pika.publish(channel, "", queue, body, name=f"orders publish {i}")
    connection.close()
    return orphans


async def _produce(url: str, queue: str) -> list[bytes]:
    """Publish TOTAL messages: random tenants, some with no tenant (their bodies returned)."""
    orphans: list[bytes] = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = channel.default_exchange
        for i in range(TOTAL):
            if i % (TOTAL // TENANTLESS) == 0:
                body = os.urandom(64) + bytes(range(256))  # not JSON; never parsed if refused
                orphans.append(body)
                await exchange.publish(aio_pika.Message(body), queue)
                continue
            tenant = f"tenant-{random.randrange(25)}"
            body = json.dumps({"id": i, "tenant": tenant}).encode()
            with ft.context(tenant=tenant, user=f"u{i}"):
                await ft_aio_pika.publish(
                    exchange, aio_pika.Message(body), queue, name=f"orders publish {i}"
                )
    return orphans


async def _drain(url: str, dlq: str) -> list[bytes]:
    bodies = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(dlq)
        while (message := await queue.get(fail=False)) is not None:
            bodies.append(message.body)
            await message.ack()
    return bodies


@pytest.mark.parametrize(
    ("producer", "mode"),
    [("aio-pika", "callback"), ("aio-pika", "iterator"), ("pika", "callback")],
)
def test_1000_messages_across_processes(
    producer: str, mode: str, queues: tuple[str, str, str], receiver: Receiver, tmp_path: Path  # noqa: F811
) -> None:
    """0 crossings, 0 tenant-less processed, refused messages dead-lettered byte-identical,
    every consumer span linked to its producer span (consumer spans read over OTLP)."""
    url, queue, dlq = queues
    with Capture() as capture:
        if producer == "pika":
            orphans = _produce_pika(url, queue)
        else:
            orphans = asyncio.run(_produce(url, queue))
        producer_ids = {
            int(s.name.rsplit(" ", 1)[1]): s.context.span_id
            for s in capture.spans()
            if s.name.startswith("orders publish ")
        }
    assert len(producer_ids) == TOTAL - TENANTLESS
    out = tmp_path / "consumed.jsonl"
    result = subprocess.run(
        [sys.executable, str(CONSUMER), url, queue, dlq, receiver.endpoint, str(TOTAL),
         str(out), mode],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    assert result.returncode == 0, result.stderr

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == TOTAL - TENANTLESS  # every tenant message processed, nothing else
    assert [line for line in lines if line["tenant"] is None] == []
    crossings = [
        line for line in lines
        if not (line["tenant"] == line["tenant_after_await"] == line["expected"])
    ]
    assert crossings == []
    assert sorted(_run_drain(url, dlq)) == sorted(orphans)  # identical bytes

    spans = [span for _, span in receiver.spans() if span.name == "orders.consume"]
    assert len(spans) == TOTAL  # one per message, refused ones included
    linked = 0
    for span in spans:
        attributes = {a.key: _value(a.value) for a in span.attributes}
        if "test.id" not in attributes:
            continue  # a refused message: it had no producer span to link to
        (link,) = span.links
        assert int.from_bytes(link.span_id, "big") == producer_ids[attributes["test.id"]]
        assert attributes["flowtrace.tenant"] == next(
            line["expected"] for line in lines if line["id"] == attributes["test.id"]
        )
        linked += 1
    assert linked == TOTAL - TENANTLESS


def _run_drain(url: str, dlq: str) -> list[bytes]:
    return asyncio.run(_drain(url, dlq))


def test_pika_dead_letter_to_keeps_body_and_properties(queues: tuple[str, str, str]) -> None:
    """A pika consumer refusing a tenant-less message re-publishes it unchanged, then acks."""
    import pika

    from flowtrace.integrations import pika as ft_pika

    url, queue, dlq = queues
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    body = bytes(range(256))
    channel.basic_publish("", queue, body, pika.BasicProperties(content_type="x/raw"))
    processed: list[bytes] = []

    @ft.consumer("orders.consume", on_missing=ft_pika.dead_letter_to(dlq))
    def on_message(ch: object, method: object, properties: object, payload: bytes) -> None:
        processed.append(payload)

    method, properties, payload = channel.basic_get(queue)
    on_message(channel, method, properties, payload)
    dead = None
    for _ in range(50):
        dead = channel.basic_get(dlq, auto_ack=True)
        if dead[0] is not None:
            break
        connection.sleep(0.1)
    assert dead is not None
    assert processed == []
    assert (dead[2], dead[1].content_type) == (body, "x/raw")
    assert channel.queue_declare(queue, passive=True).method.message_count == 0  # acked
    connection.close()
