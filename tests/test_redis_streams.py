"""Redis Streams against real Redis: producer here, a consumer-group worker in a subprocess."""

from __future__ import annotations

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

redis = pytest.importorskip("redis")
from flowtrace.integrations import redis_streams as ft_streams  # noqa: E402

pytestmark = pytest.mark.services

TOTAL = 1000
TENANTLESS = 50
WORKER = Path(__file__).with_name("_redis_streams_consumer.py")


@pytest.fixture
def streams() -> Iterator[tuple[int, str, str, str]]:
    """(port, stream, group, dead-letter stream): unique names, deleted afterwards."""
    _, port = require_service("redis")
    suffix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stream, dead = f"ft-orders-{suffix}", f"ft-orders-dead-{suffix}"
    client = redis.Redis(port=port)
    client.xgroup_create(stream, "billing", id="0", mkstream=True)
    yield port, stream, "billing", dead
    client.delete(stream, dead)
    client.close()


def test_1000_entries_consumer_group_across_processes(
    streams: tuple[int, str, str, str], receiver: Receiver, tmp_path: Path  # noqa: F811
) -> None:
    """0 crossings, 0 tenant-less processed, refused entries dead-lettered with identical
    fields, every consumer span linked to its producer span (over OTLP)."""
    port, stream, group, dead = streams
    client = redis.Redis(port=port)
    orphans: list[dict[bytes, bytes]] = []
    with Capture() as capture:
        for i in range(TOTAL):
            if i % (TOTAL // TENANTLESS) == 0:
                fields = {b"body": os.urandom(32) + bytes(range(256)), b"kind": b"raw"}
                orphans.append(fields)
                client.xadd(stream, fields)  # written by hand: no context at all
                continue
            tenant = f"tenant-{random.randrange(25)}"
            with ft.context(tenant=tenant):
                ft_streams.add(client, stream, json.dumps({"id": i, "expected": tenant}).encode(),
                               name=f"orders publish {i}")
        producer_ids = {
            int(s.name.rsplit(" ", 1)[1]): s.context.span_id
            for s in capture.spans() if s.name.startswith("orders publish ")
        }
    out = tmp_path / "consumed.jsonl"
    result = subprocess.run(
        [sys.executable, str(WORKER), str(port), stream, group, dead, receiver.endpoint,
         str(TOTAL), str(out)],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    assert result.returncode == 0, result.stderr

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == TOTAL - TENANTLESS
    assert [line for line in lines if line["tenant"] != line["expected"]] == []
    dead_fields = [fields for _, fields in client.xrange(dead)]
    assert dead_fields == orphans  # identical bytes, every field, in order
    assert client.xpending(stream, group)["pending"] == 0  # all acknowledged

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
    client.close()
