"""NATS JetStream against the real server: producer here, a pull consumer in a subprocess."""

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

nats = pytest.importorskip("nats")
from flowtrace.integrations import nats as ft_nats  # noqa: E402

pytestmark = pytest.mark.services

TOTAL = 1000
TENANTLESS = 50
WORKER = Path(__file__).with_name("_nats_consumer.py")


@pytest.fixture
def stream() -> Iterator[tuple[str, str, str, str]]:
    """(url, subject, dead subject, stream name): a unique stream, deleted afterwards."""
    host, port = require_service("nats")
    url = f"nats://{host}:{port}"
    suffix = uuid.uuid4().hex[:10]
    name, subject, dead = f"FT_{suffix}", f"ft.{suffix}.orders", f"ft.{suffix}.dead"

    async def setup(delete: bool) -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        if delete:
            await js.delete_stream(name)
        else:
            await js.add_stream(name=name, subjects=[subject, dead])
        await nc.close()

    asyncio.run(setup(False))
    yield url, subject, dead, name
    asyncio.run(setup(True))


async def _produce(url: str, subject: str) -> list[bytes]:
    orphans = []
    nc = await nats.connect(url)
    js = nc.jetstream()
    for i in range(TOTAL):
        if i % (TOTAL // TENANTLESS) == 0:
            data = os.urandom(32) + bytes(range(256))
            orphans.append(data)
            await js.publish(subject, data)  # no headers at all
            continue
        tenant = f"tenant-{random.randrange(25)}"
        with ft.context(tenant=tenant):
            await ft_nats.publish(
                js, subject, json.dumps({"id": i, "expected": tenant}).encode(),
                name=f"orders publish {i}",
            )
    await nc.close()
    return orphans


async def _dead(url: str, dead: str) -> list[bytes]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    subscription = await js.pull_subscribe(dead, durable=f"dead{uuid.uuid4().hex[:6]}")
    out: list[bytes] = []
    while True:
        try:
            batch = await subscription.fetch(100, timeout=2)
        except nats.errors.TimeoutError:
            break
        for msg in batch:
            out.append(msg.data)
            await msg.ack()
    await nc.close()
    return out


def test_1000_messages_jetstream_across_processes(
    stream: tuple[str, str, str, str], receiver: Receiver, tmp_path: Path  # noqa: F811
) -> None:
    """0 crossings, 0 tenant-less processed, refused messages dead-lettered byte-identical,
    every consumer span linked to its producer span (over OTLP)."""
    url, subject, dead, _ = stream
    with Capture() as capture:
        orphans = asyncio.run(_produce(url, subject))
        producer_ids = {
            int(s.name.rsplit(" ", 1)[1]): s.context.span_id
            for s in capture.spans() if s.name.startswith("orders publish ")
        }
    out = tmp_path / "consumed.jsonl"
    result = subprocess.run(
        [sys.executable, str(WORKER), url, subject, dead, "worker", receiver.endpoint,
         str(TOTAL), str(out)],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    assert result.returncode == 0, result.stderr

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == TOTAL - TENANTLESS
    assert [line for line in lines if line["tenant"] != line["expected"]] == []
    assert sorted(asyncio.run(_dead(url, dead))) == sorted(orphans)

    expected = {line["id"]: line["expected"] for line in lines}
    spans = [span for _, span in receiver.spans() if span.name == "orders.consume"]
    assert len(spans) == TOTAL
    linked = 0
    for span in spans:
        attributes = {a.key: _value(a.value) for a in span.attributes}
        if "test.id" not in attributes:
            continue
        (link,) = span.links
        assert int.from_bytes(link.span_id, "big") == producer_ids[attributes["test.id"]]
        assert attributes["flowtrace.tenant"] == expected[attributes["test.id"]]
        linked += 1
    assert linked == TOTAL - TENANTLESS
